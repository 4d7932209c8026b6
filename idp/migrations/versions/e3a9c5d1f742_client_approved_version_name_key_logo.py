"""client: approved metadata version, name key for unique names, logo kept by the IdP

Revision ID: e3a9c5d1f742
Revises: e3a9c1f4b702
Create Date: 2026-11-26 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3a9c5d1f742'
down_revision = 'e3a9c1f4b702'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metadata_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('name_key', sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column('logo_content_type', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('logo_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('logo_image', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('logo_problem', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_client_name_key'), ['name_key'], unique=False)

    # Every registration starts at version 1. Only a service that is in use now (active, or
    # suspended from active) counts as approved: one that is disabled may have been switched
    # off while a change waited for approval, so it is approved again before it is used.
    client = sa.table(
        'client',
        sa.column('id', sa.Integer),
        sa.column('client_metadata', sa.JSON),
        sa.column('status', sa.String),
        sa.column('status_before_suspension', sa.String),
        sa.column('metadata_version', sa.Integer),
        sa.column('approved_version', sa.Integer),
        sa.column('name_key', sa.String),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(client)).mappings().all():
        name = (row['client_metadata'] or {}).get('client_name')
        in_use = row['status'] == 'active' or (
            row['status'] == 'suspended' and row['status_before_suspension'] == 'active'
        )
        connection.execute(
            client.update()
            .where(client.c.id == row['id'])
            .values(
                metadata_version=1,
                approved_version=1 if in_use else None,
                name_key=(' '.join(name.split()).casefold()[:400] or None) if name else None,
            )
        )
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.alter_column('metadata_version', existing_type=sa.Integer(), nullable=False)


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_name_key'))
        batch_op.drop_column('logo_problem')
        batch_op.drop_column('logo_image')
        batch_op.drop_column('logo_sha256')
        batch_op.drop_column('logo_content_type')
        batch_op.drop_column('name_key')
        batch_op.drop_column('approved_version')
        batch_op.drop_column('metadata_version')
