"""phone numbers for codes by text message, and the codes sent to them

Revision ID: c4d8a2f6e915
Revises: b8e3f0a1c247
Create Date: 2026-12-07 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d8a2f6e915'
down_revision = 'b8e3f0a1c247'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'phone_number',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['citizen_id'], ['citizen.id'],
            name=op.f('fk_phone_number_citizen_id_citizen'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_number')),
        sa.UniqueConstraint('citizen_id', name=op.f('uq_phone_number_citizen_id')),
    )
    op.create_table(
        'sms_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('handle_hash', sa.String(length=64), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('citizen_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['citizen_id'], ['citizen.id'],
            name=op.f('fk_sms_code_citizen_id_citizen'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_code')),
        sa.UniqueConstraint('handle_hash', name=op.f('uq_sms_code_handle_hash')),
    )
    with op.batch_alter_table('sms_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_code_citizen_id'), ['citizen_id'], unique=False)


def downgrade():
    with op.batch_alter_table('sms_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_code_citizen_id'))
    op.drop_table('sms_code')
    op.drop_table('phone_number')
