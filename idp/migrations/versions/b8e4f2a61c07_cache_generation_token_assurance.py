"""cache generations (processes keep registrations and signing keys in memory); the level and
methods of a token's sign-in stored on the access token (userinfo reads no other row)

Revision ID: b8e4f2a61c07
Revises: a7d2c6e9f310
Create Date: 2026-12-06 12:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b8e4f2a61c07'
down_revision = 'a7d2c6e9f310'
branch_labels = None
depends_on = None


def upgrade():
    generation = op.create_table(
        'cache_generation',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_cache_generation')),
    )
    op.bulk_insert(
        generation, [{'name': 'registrations', 'value': 0}, {'name': 'signing_keys', 'value': 0}]
    )
    # Tokens issued before this keep NULL here: userinfo then reads their code or refresh
    # token as before.
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vot', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('amr', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.drop_column('amr')
        batch_op.drop_column('vot')
    op.drop_table('cache_generation')
