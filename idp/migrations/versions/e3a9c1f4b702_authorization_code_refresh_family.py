"""authorization code refresh family

The refresh token family a code's redemption started, so a replay of the code revokes it.

Revision ID: e3a9c1f4b702
Revises: d7e2b4c8a613
Create Date: 2026-11-25 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3a9c1f4b702'
down_revision = 'd7e2b4c8a613'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresh_family', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_column('refresh_family')
