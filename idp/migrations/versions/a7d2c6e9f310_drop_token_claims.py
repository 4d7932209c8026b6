"""drop token.claims: never written with anything but {} and never read

Revision ID: a7d2c6e9f310
Revises: e3f1a9c4b702
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7d2c6e9f310'
down_revision = 'e3f1a9c4b702'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.drop_column('claims')


def downgrade():
    # Back as it was (NOT NULL), with {} for the tokens issued meanwhile.
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('claims', sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
