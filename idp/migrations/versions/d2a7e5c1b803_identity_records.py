"""identity: proved identities (encrypted), checks in progress, what departments received

Revision ID: d2a7e5c1b803
Revises: c9d3e7a1f482
Create Date: 2026-12-06 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'd2a7e5c1b803'
down_revision = 'c9d3e7a1f482'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'identity_record',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('level', sa.String(length=4), nullable=False),
        sa.Column('details_encrypted', sa.Text(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reference', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('citizen_id'),
    )
    op.create_table(
        'identity_check',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reference', sa.String(length=64), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state_encrypted', sa.Text(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('return_code', sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('reference'),
    )
    with op.batch_alter_table('identity_check', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_check_citizen_id'), ['citizen_id'], unique=False)
    op.create_table(
        'identity_disclosure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=128), nullable=False),
        sa.Column('claim', sa.String(length=100), nullable=False),
        sa.Column('first_shared_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_shared_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['citizen_id'], ['citizen.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('citizen_id', 'client_id', 'claim'),
    )
    with op.batch_alter_table('identity_disclosure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_disclosure_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_disclosure_client_id'), ['client_id'], unique=False)
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_claims', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_column('identity_claims')
    with op.batch_alter_table('identity_disclosure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_disclosure_client_id'))
        batch_op.drop_index(batch_op.f('ix_identity_disclosure_citizen_id'))
    op.drop_table('identity_disclosure')
    with op.batch_alter_table('identity_check', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_check_citizen_id'))
    op.drop_table('identity_check')
    op.drop_table('identity_record')
