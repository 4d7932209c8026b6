"""audit_pending: entries recorded but not yet chained (the linker chains them in batches)

Revision ID: b8e3f0a1c247
Revises: b8e4f2a61c07
Create Date: 2026-12-06 12:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8e3f0a1c247'
down_revision = 'b8e4f2a61c07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_pending',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('client_id', sa.String(length=128), nullable=True),
    sa.Column('session_ref', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=True),
    sa.Column('methods', sa.String(length=100), nullable=True),
    sa.Column('instance', sa.String(length=100), nullable=False),
    sa.Column('software_version', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('citizen_id', sa.Integer(), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_pending'))
    )


def downgrade():
    # Entries still waiting would be lost with the table: chain them first.
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM audit_pending")).scalar()
    if waiting:
        raise RuntimeError(
            f"{waiting} audit entries are not yet chained: run `idp audit link` before downgrading"
        )
    op.drop_table('audit_pending')
