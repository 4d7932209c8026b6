"""What every page shares: GOV.UK Frontend's Jinja macros (govuk-frontend-jinja, the port of
the GOV.UK Design System's Nunjucks macros), the brand setting, the Design System's error
pattern, and the pages the footer links to (accessibility, privacy, cookies).

GOV.UK Frontend's compiled files are in ``idp/static/govuk/`` (``make assets``). Its
stylesheet and favicons come in two kinds: with the GOV.UK brand (crown, logotype, GDS
Transport) only when ``govuk_brand`` is on, as only a service on GOV.UK may use them; and
otherwise GOV.UK Frontend's header for other services, in Arial.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, Flask, render_template
from flask_babel import gettext
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader
from wtforms import Form

from idp.settings import current_settings

bp = Blueprint("about", __name__)


@dataclass
class PageErrors:
    """A page's errors in the two shapes the Design System shows them: the error summary's
    list (each item linked to its field) and the message beside each field."""

    summary: list[dict] = field(default_factory=list)
    by_field: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.summary)

    def message(self, form_field) -> dict | None:
        """The ``errorMessage`` a GOV.UK Frontend macro takes for this field, or None."""
        text = self.by_field.get(form_field.id)
        return {"text": text, "visuallyHiddenText": gettext("Error")} if text else None


def page_errors(form: Form | None = None, *messages: str | None) -> PageErrors:
    """A form's field errors (the first of each field, as the Design System shows one message
    per field) and page-level messages that belong to no field, in the order of the page.

    A message for a field (a wrong password, a wrong code) is put on the field by the view
    (``form.password.errors.append(...)``) so it shows beside it as well as in the summary.
    """
    errors = PageErrors()
    for form_field in form or ():
        if not form_field.errors or form_field.id in errors.by_field:
            continue
        text = str(form_field.errors[0])
        if form_field.type in {"CSRFTokenField", "HiddenField"}:
            errors.summary.append({"text": text})  # nothing on the page to link to
            continue
        errors.by_field[form_field.id] = text
        errors.summary.append({"text": text, "href": f"#{form_field.id}"})
    errors.summary.extend({"text": str(text)} for text in messages if text)
    return errors


def frontend_context() -> dict:
    """The brand and the service's name, for the layout."""
    brand = current_settings().govuk_brand
    stylesheet = "govuk-frontend.min.css" if brand else "govuk-frontend-unbranded.min.css"
    return {
        "govuk_brand": brand,
        "govuk_stylesheet": stylesheet,
        "service_name": gettext("Government sign in"),
    }


@bp.get("/accessibility")
def accessibility():
    """The accessibility statement."""
    return render_template("about/accessibility.html")


@bp.get("/privacy")
def privacy():
    """The privacy notice: what the service keeps about a citizen, and why."""
    return render_template("about/privacy.html")


@bp.get("/cookies")
def cookies():
    """The cookies the service sets: all strictly necessary, so there is no banner."""
    return render_template("about/cookies.html")


def init_frontend(app: Flask) -> None:
    """GOV.UK Frontend's macros under ``govuk_frontend_jinja/``, beside the IdP's templates;
    the layout's context; the error helper; the footer's pages."""
    app.jinja_loader = ChoiceLoader(
        [
            app.jinja_loader,
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    )
    app.jinja_env.globals["page_errors"] = page_errors
    app.context_processor(frontend_context)
    app.register_blueprint(bp)
