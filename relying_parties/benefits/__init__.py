"""DWP's sample benefits service: a public client, with PKCE and no secret or key.

It asks for a proved identity (P2) with the verified address, and fills its application form
with that address, so the citizen does not type what they have already proved.
"""

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from relying_parties.account import signed_in_account
from relying_parties.common import DepartmentSettings, create_department_app

blueprint = Blueprint("benefits", __name__, template_folder="templates")
FORM_FIELDS = ("address_line_1", "address_line_2", "address_town", "address_postcode")
REQUIRED_FIELDS = (
    ("address_line_1", "Enter address line 1, typically the building and street"),
    ("address_town", "Enter town or city"),
    ("address_postcode", "Enter postcode"),
)
MAX_FIELD_LENGTH = 100


@blueprint.post("/apply")
def apply() -> Response | str | tuple[str, int]:
    """The application's address: checked, then confirmed (a sample: nothing is sent)."""
    account = signed_in_account()
    if account is None:
        return redirect(url_for("department.start"))
    answers = {name: request.form.get(name, "").strip() for name in FORM_FIELDS}
    field_errors = {name: message for name, message in REQUIRED_FIELDS if not answers[name]}
    for name in FORM_FIELDS:
        if len(answers[name]) > MAX_FIELD_LENGTH and name not in field_errors:
            field_errors[name] = "Each line of the address must be 100 characters or fewer"
    if field_errors:
        errors = [
            {"text": message, "href": "#" + name.replace("_", "-")}
            for name, message in field_errors.items()
        ]
        return render_template(
            "rp/apply_problem.html", errors=errors, field_errors=field_errors, answers=answers
        ), 400
    return render_template("rp/applied.html", answers=answers)


def create_app(settings: DepartmentSettings) -> Flask:
    """The benefits service."""
    app = create_department_app(settings, __name__)
    app.register_blueprint(blueprint)
    return app
