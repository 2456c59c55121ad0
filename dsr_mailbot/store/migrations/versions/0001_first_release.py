"""0001: the schema of the first release, exactly as ``create_all`` made it (commit cd12e22).

On MySQL/MariaDB only (which that release did not support): timestamps keep microseconds, the tables are
utf8mb4 with a binary collation, and the 998-character Message-ID is indexed by a prefix (InnoDB's key limit).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from dsr_mailbot.store.models import MYSQL_KEY_PREFIX, MYSQL_TABLE, TIMESTAMP

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', TIMESTAMP, nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('subject_ref', AutoString(length=64), nullable=True),
    sa.Column('event', AutoString(length=50), nullable=False),
    sa.Column('actor', AutoString(length=100), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    **MYSQL_TABLE,
    )
    op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
    op.create_index(op.f('ix_audit_events_request_id'), 'audit_events', ['request_id'], unique=False)
    op.create_index(op.f('ix_audit_events_subject_ref'), 'audit_events', ['subject_ref'], unique=False)
    op.create_table('mailbox_cursors',
    sa.Column('source', AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.Integer(), nullable=False),
    sa.Column('last_uid', sa.Integer(), nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('source'),
    **MYSQL_TABLE,
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', AutoString(length=320), nullable=False),
    sa.Column('phone', AutoString(length=32), nullable=True),
    sa.Column('surname', AutoString(length=100), nullable=True),
    sa.Column('first_name', AutoString(length=100), nullable=True),
    sa.Column('patronymic', AutoString(length=100), nullable=True),
    sa.Column('processing_consent', sa.Boolean(), nullable=False),
    sa.Column('marketing_consent', sa.Boolean(), nullable=False),
    sa.Column('consent_withdrawn_at', TIMESTAMP, nullable=True),
    sa.Column('marketing_opted_out_at', TIMESTAMP, nullable=True),
    sa.Column('erasure_due_at', TIMESTAMP, nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    **MYSQL_TABLE,
    )
    op.create_index(op.f('ix_users_email'), 'users', ['email'], unique=True)
    op.create_index(op.f('ix_users_erasure_due_at'), 'users', ['erasure_due_at'], unique=False)
    op.create_table('requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', AutoString(length=998), nullable=False),
    sa.Column('source', AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.Integer(), nullable=False),
    sa.Column('uid', sa.Integer(), nullable=False),
    sa.Column('kind', AutoString(length=20), nullable=False),
    sa.Column('state', AutoString(length=30), nullable=False),
    sa.Column('outcome', AutoString(length=50), nullable=True),
    sa.Column('reason', AutoString(length=500), nullable=True),
    sa.Column('language', AutoString(length=5), nullable=False),
    sa.Column('received_at', TIMESTAMP, nullable=False),
    sa.Column('due_at', TIMESTAMP, nullable=False),
    sa.Column('completed_at', TIMESTAMP, nullable=True),
    sa.Column('archived_at', TIMESTAMP, nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('subject_ref', AutoString(length=64), nullable=False),
    sa.Column('reply_address', AutoString(length=320), nullable=True),
    sa.Column('subject', AutoString(length=998), nullable=True),
    sa.Column('intent', sa.JSON(), nullable=False),
    sa.Column('authenticated', sa.Boolean(), nullable=False),
    sa.Column('awaiting', AutoString(length=1), nullable=True),
    sa.Column('confirm_expires_at', TIMESTAMP, nullable=True),
    sa.Column('related_request_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    **MYSQL_TABLE,
    )
    op.create_index(op.f('ix_requests_confirm_expires_at'), 'requests', ['confirm_expires_at'], unique=False)
    op.create_index(op.f('ix_requests_message_id'), 'requests', ['message_id'], unique=True,
                    mysql_length=MYSQL_KEY_PREFIX)
    op.create_index(op.f('ix_requests_related_request_id'), 'requests', ['related_request_id'], unique=False)
    op.create_index(op.f('ix_requests_state'), 'requests', ['state'], unique=False)
    op.create_index(op.f('ix_requests_subject_ref'), 'requests', ['subject_ref'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('purpose', AutoString(length=50), nullable=False),
    sa.Column('message_id', AutoString(length=255), nullable=False),
    sa.Column('recipient', AutoString(length=320), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('state', AutoString(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', AutoString(length=500), nullable=True),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('sent_at', TIMESTAMP, nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id'),
    **MYSQL_TABLE,
    )
    op.create_index(op.f('ix_outbox_request_id'), 'outbox', ['request_id'], unique=False)
    op.create_index(op.f('ix_outbox_state'), 'outbox', ['state'], unique=False)


def downgrade() -> None:
    for table in ("outbox", "requests", "users", "mailbox_cursors", "audit_events"):
        op.drop_table(table)
