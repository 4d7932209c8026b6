"""Staff accounts (platform and department administrators, auditors) and their sessions."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.department import Department
from idp.models.timestamps import UTCDateTime, utcnow

ROLE_PLATFORM_ADMIN = "platform_admin"
ROLE_DEPARTMENT_ADMIN = "department_admin"
# Reads the audit record, and nothing else: a separate duty from running the platform.
ROLE_AUDITOR = "auditor"
STAFF_ROLES = (ROLE_PLATFORM_ADMIN, ROLE_DEPARTMENT_ADMIN, ROLE_AUDITOR)


class StaffMember(db.Model):
    """Someone who runs the IdP or a department's services, or audits them; never a citizen
    account."""

    __tablename__ = "staff_member"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The staff member's authenticator app (RFC 6238), encrypted at rest like citizens'.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_used_step: Mapped[int] = mapped_column(default=0, server_default="0")

    department: Mapped[Department | None] = relationship(lazy="joined")

    @property
    def is_platform_admin(self) -> bool:
        """Whether this member approves and suspends services for the whole platform."""
        return self.role == ROLE_PLATFORM_ADMIN

    @property
    def is_auditor(self) -> bool:
        """Whether this member reads the audit record (and changes nothing)."""
        return self.role == ROLE_AUDITOR


class StaffSession(db.Model):
    """A staff member's signed-in browser; the cookie holds only a random value."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How the staff member signed in (RFC 8176): ["pwd"] until the second factor, then "otp".
    amr: Mapped[list[str] | None] = mapped_column(JSON)

    staff: Mapped[StaffMember] = relationship(lazy="joined")
