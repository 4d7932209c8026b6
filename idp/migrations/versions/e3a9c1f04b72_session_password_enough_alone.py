"""browser_session.password_enough_alone: whether the sign-in's password may be a single factor

Revision ID: e3a9c1f04b72
Revises: e3a9c5d1f742
Create Date: 2026-12-06 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3a9c1f04b72'
down_revision = 'e3a9c5d1f742'
branch_labels = None
depends_on = None


def upgrade():
    # Sessions open at the upgrade are not known to have had a long password: false, so a
    # department asking for Cl sends them to the second factor once.
    with op.batch_alter_table('browser_session', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'password_enough_alone', sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade():
    with op.batch_alter_table('browser_session', schema=None) as batch_op:
        batch_op.drop_column('password_enough_alone')
