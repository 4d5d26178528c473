"""What other apps may use of gateways, in one place (an import-linter contract keeps them to
it): clusters and their tokens, who changes a configuration, the agents' context, live status and heartbeats,
snapshots read and compared. Publishing, the section registry and rollback are in
`saas.gateways.publishing`; the base for cluster-scoped API views in `saas.gateways.api.scoping`."""

from .agents import (
    AgentContext,
    authenticate_agent_cached,
    authenticated_agent,
    instance_statuses,
    recently_authenticated,
)
from .api.heartbeat import store_heartbeat
from .clusters import (
    CLUSTER_TOKEN_PREFIX,
    Author,
    create_cluster,
    create_cluster_token,
    delete_cluster,
    revoke_cluster_token,
    rotate_cluster_token,
    update_cluster,
)
from .models import ClusterToken, ConfigSnapshot, GatewayCluster
from .snapshots import diff_documents, redact, snapshot_document

__all__ = [
    "CLUSTER_TOKEN_PREFIX",
    "AgentContext",
    "Author",
    "ClusterToken",
    "ConfigSnapshot",
    "GatewayCluster",
    "authenticate_agent_cached",
    "authenticated_agent",
    "create_cluster",
    "create_cluster_token",
    "delete_cluster",
    "diff_documents",
    "instance_statuses",
    "recently_authenticated",
    "redact",
    "revoke_cluster_token",
    "rotate_cluster_token",
    "snapshot_document",
    "store_heartbeat",
    "update_cluster",
]
