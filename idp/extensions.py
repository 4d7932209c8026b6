"""Flask extensions, created once and bound to an app in create_app."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every stored thing."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()


def discard_session() -> None:
    """End this request's (or task's) database session without ever raising.

    Closing a session rolls back its open transaction on the server. When PostgreSQL has
    restarted (or dropped the connection) since the last statement, that rollback fails with
    an OperationalError, yet there is nothing left to undo: the server has already discarded
    the transaction. So the connection is invalidated instead (closed without a word to the
    server, and never handed to another request) and the answer already made stands: the
    IdP's own 503, or a response whose work was committed before the connection was lost.
    """
    try:
        db.session.remove()
    except SQLAlchemyError:
        db.session().invalidate()
        db.session.remove()
