"""test citizens: a department's CI accounts whose codes may be reused within their step

Revision ID: e3f1a9c4b702
Revises: f1c8a2d4b905
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3f1a9c4b702'
down_revision = 'f1c8a2d4b905'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('citizen', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('test_citizen', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table('citizen', schema=None) as batch_op:
        batch_op.drop_column('test_citizen')
