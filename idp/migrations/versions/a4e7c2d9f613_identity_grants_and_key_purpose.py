"""identity: what a code or token grants of a proved identity; the identity-signing key

Revision ID: a4e7c2d9f613
Revises: d2a7e5c1b803
Create Date: 2026-12-06 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'a4e7c2d9f613'
down_revision = 'd2a7e5c1b803'
branch_labels = None
depends_on = None

GRANT_TABLES = ('authorization_code', 'token', 'refresh_token')


def upgrade():
    for table in GRANT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('identity', sa.JSON(), nullable=True))
    with op.batch_alter_table('signing_key', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('purpose', sa.String(length=16), nullable=False, server_default='id_token')
        )


def downgrade():
    with op.batch_alter_table('signing_key', schema=None) as batch_op:
        batch_op.drop_column('purpose')
    for table in GRANT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('identity')
