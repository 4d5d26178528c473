"""Deploy targets, with no Django: AWS (`infra.aws`), Kubernetes (`infra.kubernetes`: a gateway's
objects, and the API client that applies them), self-hosting (`infra.selfhost`). Nothing here
imports Django or an app: what settings say is passed in by the app that calls (for AWS and
Kubernetes, saas.deployments)."""
