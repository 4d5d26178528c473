"""Gateway clusters and their agent tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction

from core import clock
from core.errors import InvalidInput
from tenants.audit import Actor, record_audit
from tenants.credentials import hash_secret, new_secret
from tenants.models import Organization

from .models import CLUSTER_TOKEN_PREFIX, ClusterToken, GatewayCluster
from .notifier import announce_token_change


@dataclass(frozen=True)
class Author:
    """Who changes an organization's gateway configuration, for the audit log and snapshots."""

    actor: Actor
    organization: Organization

    @property
    def label(self) -> str:
        return self.actor.user.email if self.actor.user else self.actor.name


def _cluster_fields(cluster: GatewayCluster) -> dict[str, Any]:
    return {"name": cluster.name, "description": cluster.description, "labels": cluster.labels}


def _unique_name(name: str, exclude_id: int | None) -> None:
    clash = GatewayCluster.objects.filter(name=name)
    if exclude_id is not None:
        clash = clash.exclude(id=exclude_id)
    if clash.exists():
        raise InvalidInput.field("name", f"A cluster named {name!r} already exists.")


@transaction.atomic
def create_cluster(author: Author, *, name: str, description: str, labels: dict[str, str]) -> GatewayCluster:
    _unique_name(name, None)
    try:
        with transaction.atomic():
            cluster = GatewayCluster.objects.create(name=name, description=description, labels=labels)
    except IntegrityError as exc:
        raise InvalidInput.field("name", f"A cluster named {name!r} already exists.") from exc
    record_audit(author.actor, author.organization, "cluster.create", cluster, after=_cluster_fields(cluster))
    return cluster


@transaction.atomic
def update_cluster(
    author: Author, cluster: GatewayCluster, *, name: str, description: str, labels: dict[str, str]
) -> GatewayCluster:
    before = _cluster_fields(cluster)
    _unique_name(name, cluster.id)
    cluster.name, cluster.description, cluster.labels = name, description, labels
    cluster.save()
    record_audit(
        author.actor,
        author.organization,
        "cluster.update",
        cluster,
        before=before,
        after=_cluster_fields(cluster),
    )
    return cluster


@transaction.atomic
def delete_cluster(author: Author, cluster: GatewayCluster) -> None:
    record_audit(
        author.actor, author.organization, "cluster.delete", cluster, before=_cluster_fields(cluster)
    )
    token_hashes = list(ClusterToken.objects.filter(cluster=cluster).values_list("token_hash", flat=True))
    cluster.delete()  # the cluster's catalog, tokens and snapshots go with it
    transaction.on_commit(partial(announce_token_change, *token_hashes))


@transaction.atomic
def create_cluster_token(author: Author, cluster: GatewayCluster, *, name: str) -> tuple[ClusterToken, str]:
    """Returns the token and its secret, shown only this once. The secret names the
    organization, so the agent API can find the schema before it checks the hash."""
    secret = f"{CLUSTER_TOKEN_PREFIX}{author.organization.id}_{new_secret()}"
    token = ClusterToken.objects.create(
        cluster=cluster,
        name=name,
        prefix=secret[: len(CLUSTER_TOKEN_PREFIX) + len(str(author.organization.id)) + 7],
        token_hash=hash_secret(secret),
        created_by=author.label,
    )
    record_audit(
        author.actor,
        author.organization,
        "cluster_token.create",
        token,
        after={"name": name, "cluster": cluster.name},
    )
    return token, secret


@transaction.atomic
def revoke_cluster_token(author: Author, token: ClusterToken) -> None:
    """The token stops working now, a rotated one too, before its grace period ends; every web
    process is told to forget it."""
    now = clock.now()
    if not token.accepted_at(now):
        return
    token.revoked_at = now
    token.save(update_fields=["revoked_at"])
    transaction.on_commit(partial(announce_token_change, token.token_hash))
    record_audit(
        author.actor, author.organization, "cluster_token.revoke", token, before={"name": token.name}
    )


ROTATION_GRACE_DEFAULT_S = 3600
ROTATION_GRACE_MAX_S = 7 * 24 * 3600


@transaction.atomic
def rotate_cluster_token(
    author: Author, token: ClusterToken, *, grace_seconds: int = ROTATION_GRACE_DEFAULT_S
) -> tuple[ClusterToken, str]:
    """A new secret under the same name. The old one keeps working for `grace_seconds` (0: it
    stops now), time to give the new one to every gateway, then is refused."""
    if not 0 <= grace_seconds <= ROTATION_GRACE_MAX_S:
        raise InvalidInput.field("grace_seconds", f"From 0 to {ROTATION_GRACE_MAX_S} seconds.")
    token = ClusterToken.objects.select_for_update().get(id=token.id)
    now = clock.now()
    if token.status_at(now) != "active":
        raise InvalidInput.field(
            "token",
            "This token was rotated or revoked already; rotate its replacement or create a new one.",
        )
    token.revoked_at = now + timedelta(seconds=grace_seconds)
    token.save(update_fields=["revoked_at"])
    transaction.on_commit(partial(announce_token_change, token.token_hash))
    new_token, secret = create_cluster_token(author, token.cluster, name=token.name)
    record_audit(
        author.actor,
        author.organization,
        "cluster_token.rotate",
        token,
        before={"name": token.name},
        after={
            "replaced_by": new_token.prefix,
            "grace_seconds": grace_seconds,
            "old_secret_valid_until": token.revoked_at.isoformat(),
        },
    )
    return new_token, secret
