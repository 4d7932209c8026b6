"""audit entry software version

Revision ID: e4b1c9d27f50
Revises: e3a9c1f04b72
Create Date: 2026-12-06 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4b1c9d27f50'
down_revision = 'e3a9c1f04b72'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: entries written before this change have no version, and their hashes (which
    # leave a missing version out) stay as they were.
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('software_version', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('software_version')
