from django.urls import path

from . import views

CLUSTER = "orgs/<str:org_slug>/clusters/<str:cluster_id>"
deployments = views.DeploymentViewSet

urlpatterns = [
    path(
        "orgs/<str:org_slug>/aws/connection/",
        views.AwsConnectionViewSet.as_view({"get": "list", "post": "create"}),
        name="aws-connection",
    ),
    path(
        "orgs/<str:org_slug>/aws/eks-clusters/",
        views.AwsConnectionViewSet.as_view({"get": "eks_clusters", "post": "list_eks_clusters"}),
        name="aws-eks-clusters",
    ),
    path(
        f"{CLUSTER}/deployments/",
        deployments.as_view({"get": "list", "post": "create"}),
        name="deployment-list",
    ),
    path(
        f"{CLUSTER}/deployments/<str:pk>/",
        deployments.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="deployment-detail",
    ),
    path(
        f"{CLUSTER}/deployments/<str:pk>/teardown/",
        deployments.as_view({"post": "teardown"}),
        name="deployment-teardown",
    ),
    path(
        f"{CLUSTER}/deployments/<str:pk>/upgrade/",
        deployments.as_view({"post": "upgrade"}),
        name="deployment-upgrade",
    ),
    path(
        f"{CLUSTER}/deployments/<str:pk>/retry/",
        deployments.as_view({"post": "retry"}),
        name="deployment-retry",
    ),
]
