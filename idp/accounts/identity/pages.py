"""The citizen's identity check: the question pages, one thing per page."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from idp.accounts.guards import fully_signed_in

bp = Blueprint("identity", __name__, url_prefix="/identity")


@bp.route("/start", methods=["GET", "POST"])
@fully_signed_in
def start(current):
    """Why the check, and which document the citizen has (journey=H when a department asked)."""
    return render_template("identity/start.html", journey=request.values.get("journey"))
