"""AWS: our SaaS account (credentials from the standard AWS environment) and what gateways
deployed into customers' EKS clusters are given."""

from infra.images import gateway_image

from .env import env_str

# Our account: the one customers' roles trust (with their organization's ExternalId).
SAAS_AWS_ACCOUNT_ID = env_str("SAAS_AWS_ACCOUNT_ID", "000000000000")
# Where the AWS APIs are: only tests point it elsewhere (moto's server).
SAAS_AWS_ENDPOINT_URL = env_str("SAAS_AWS_ENDPOINT_URL", "")
# The customers' CloudFormation quick-create links need the template on S3 in production.
SAAS_AWS_TEMPLATE_URL = env_str("SAAS_AWS_TEMPLATE_URL", "")
# The gateway image deployed into EKS and named on the install page: by default this release's,
# as images/versions.env names it (what `make images` builds and tests/images runs).
SAAS_GATEWAY_IMAGE = env_str("SAAS_GATEWAY_IMAGE", gateway_image().reference)
# Where gateways reach the control plane from (their egress NetworkPolicy), comma-separated.
SAAS_CONTROL_PLANE_CIDRS = env_str("SAAS_CONTROL_PLANE_CIDRS", "0.0.0.0/0")
# Only tests set it: the Kubernetes API to use instead of the EKS cluster's endpoint.
SAAS_EKS_ENDPOINT_OVERRIDE = env_str("SAAS_EKS_ENDPOINT_OVERRIDE", "")
# How long a deploy waits for a rollout, a load balancer, the first instance online.
SAAS_DEPLOY_WAIT_S = float(env_str("SAAS_DEPLOY_WAIT_S", "600"))
# Hosted gateways: our own EKS cluster (our credentials), one namespace per organization's cluster.
SAAS_HOSTED_EKS_CLUSTER = env_str("SAAS_HOSTED_EKS_CLUSTER", "")
SAAS_HOSTED_EKS_REGION = env_str("SAAS_HOSTED_EKS_REGION", "us-east-1")
# The hosted cluster's pod CIDRs: excluded from "anywhere", so tenants cannot reach each other.
SAAS_HOSTED_POD_CIDRS = env_str("SAAS_HOSTED_POD_CIDRS", "")
