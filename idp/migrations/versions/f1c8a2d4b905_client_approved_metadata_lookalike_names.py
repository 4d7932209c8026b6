"""client: the approved version's metadata kept; name keys that ignore look-alikes

Revision ID: f1c8a2d4b905
Revises: e4b1c9d27f50
Create Date: 2026-12-08 10:00:00.000000

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1c8a2d4b905'
down_revision = 'e4b1c9d27f50'
branch_labels = None
depends_on = None

# A copy of idp.models.client.name_key as it is at this revision, so the migration means the
# same thing whatever the code becomes.
LATIN_LOOKALIKES = str.maketrans(
    {
        "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
        "ӏ": "l", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "у": "y", "ү": "y", "х": "x",
        "ԝ": "w", "α": "a", "ϲ": "c", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "υ": "u", "χ": "x",
    }
)  # fmt: skip


def name_key(name):
    if not name:
        return None
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(
        "" if unicodedata.category(c) == "Cf" else " " if unicodedata.category(c)[0] in "PSZC" else c
        for c in text
    ).translate(LATIN_LOOKALIKES)
    return " ".join(text.split())[:400] or None


def upgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approved_metadata', sa.JSON(), nullable=True))

    # The approved version's metadata is known only where it is the current one. A service
    # whose newer version waits for approval has none: until an administrator approves, it
    # gets no post-logout redirect and no logout tokens (its older settings were not kept).
    client = sa.table(
        'client',
        sa.column('id', sa.Integer),
        sa.column('client_metadata', sa.JSON),
        sa.column('metadata_version', sa.Integer),
        sa.column('approved_version', sa.Integer),
        sa.column('approved_metadata', sa.JSON),
        sa.column('name_key', sa.String),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(client)).mappings().all():
        metadata = row['client_metadata'] or {}
        current = (
            row['approved_version'] is not None
            and row['approved_version'] == row['metadata_version']
        )
        connection.execute(
            client.update()
            .where(client.c.id == row['id'])
            .values(
                approved_metadata=metadata if current else sa.null(),
                name_key=name_key(metadata.get('client_name')),
            )
        )


def downgrade():
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('approved_metadata')
    # The old name keys: case and runs of spaces only.
    client = sa.table(
        'client',
        sa.column('id', sa.Integer),
        sa.column('client_metadata', sa.JSON),
        sa.column('name_key', sa.String),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(client)).mappings().all():
        name = (row['client_metadata'] or {}).get('client_name')
        connection.execute(
            client.update()
            .where(client.c.id == row['id'])
            .values(name_key=(' '.join(name.split()).casefold()[:400] or None) if name else None)
        )
