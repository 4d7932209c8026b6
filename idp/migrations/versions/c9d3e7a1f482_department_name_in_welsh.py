"""a department's name in Welsh (shown on the citizen's pages read in Welsh)

Revision ID: c9d3e7a1f482
Revises: c4d8a2f6e915
Create Date: 2026-12-06 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c9d3e7a1f482'
down_revision = 'c4d8a2f6e915'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_cy', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('department', schema=None) as batch_op:
        batch_op.drop_column('name_cy')
