"""The organization's AWS connection: its ExternalId, the role template and quick-create link, the
role ARN verified (assume-role with the ExternalId, a preflight) and the EKS clusters it sees.

A request only records what is wanted (`request_verification`, `request_eks_listing`); the work
(`verify`, `list_eks_clusters`) runs in a task, which writes its progress and outcome where the
API reads it. This module is where settings meet `infra.aws`, which reads none."""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from core import clock
from core.errors import Conflict, InvalidInput, NotFound
from infra import aws
from saas.gateways.services import Author
from tenants.audit import Actor, record_audit
from tenants.models import Organization, User
from tenants.schemas import current_schema_name

from .models import AwsConnection, EksClusterListing

REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# Where a connection's role is verified (the IAM and STS answers are the same in every region).
VERIFY_REGION = "us-east-1"


# --- settings, passed to infra.aws --------------------------------------------------------------


def endpoint_url() -> str | None:
    """Where the AWS APIs are: AWS itself unless tests point elsewhere (moto)."""
    return str(settings.SAAS_AWS_ENDPOINT_URL) or None


def role_template() -> str:
    """The role's CloudFormation template, trusting our SaaS account."""
    return aws.role_template(str(settings.SAAS_AWS_ACCOUNT_ID))


def template_url() -> str:
    return str(settings.SAAS_AWS_TEMPLATE_URL or f"{settings.PUBLIC_URL}/aws/gateway-role.yaml")


def quick_create_url(connection: AwsConnection) -> str:
    return aws.quick_create_url(template_url(), connection.external_id)


def session_for(region: str, *, hosted: bool) -> aws.Session:
    """Our own account (hosted gateways), or the organization's verified role assumed."""
    if hosted:
        return aws.own_session(region, endpoint_url())
    connection = verified_connection()
    return aws.assume(connection.role_arn, connection.external_id, region, endpoint_url())


def check_region(region: str, field: str = "region") -> None:
    if not REGION.match(region or ""):
        raise InvalidInput.field(field, "An AWS region, like us-east-1.")


def task_author(user_id: int | None = None) -> Author:
    """Who a task's writes are recorded as: the user whose request queued it, else the system,
    in the organization whose schema the task runs in."""
    user = User.objects.filter(pk=user_id).first() if user_id is not None else None
    return Author(
        actor=Actor(user=user), organization=Organization.objects.get(schema_name=current_schema_name())
    )


# --- the connection ---------------------------------------------------------------------------


def connection_for() -> AwsConnection:
    """The organization's connection (in its schema), with its ExternalId made on first use."""
    connection = AwsConnection.objects.first()
    if connection is None:
        connection = AwsConnection()
        connection.external_id = f"gwc-{secrets.token_urlsafe(24)}"  # stored encrypted
        connection.save()
    return connection


def verified_connection() -> AwsConnection:
    connection = AwsConnection.objects.first()
    if connection is None or connection.verified_at is None:
        raise Conflict("Connect an AWS account first (POST /aws/connection/ with the role ARN).")
    return connection


def request_verification(author: Author, role_arn: str) -> AwsConnection:
    """Record the role to verify (its form checked here, 400 on `role_arn`); `verify` does it."""
    if aws.ROLE_ARN.match(role_arn) is None:
        raise InvalidInput.field("role_arn", "An IAM role ARN, like arn:aws:iam::123456789012:role/name.")
    connection = connection_for()
    before = {"role_arn": connection.role_arn, "status": connection.status}
    connection.status, connection.requested_role_arn = AwsConnection.Status.VERIFYING, role_arn
    connection.requested_at, connection.attempts = clock.now(), 0
    connection.message = "Waiting to assume the role with the organization's ExternalId."
    connection.save(update_fields=["status", "requested_role_arn", "requested_at", "attempts", "message"])
    record_audit(
        author.actor,
        author.organization,
        "aws.verification_requested",
        connection,
        before=before,
        after={"requested_role_arn": role_arn, "status": connection.status},
    )
    return connection


def verify(
    connection_id: int, role_arn: str, user_id: int | None, *, attempt: int, last_attempt: bool
) -> str:
    """Assume `role_arn` with the ExternalId and check what it may do; the outcome is stored (and
    audited) unless a newer request replaced this one meanwhile. Raises the AwsError when it is
    transient and another attempt will follow; returns the connection's status otherwise."""
    pending = AwsConnection.objects.filter(
        pk=connection_id, status=AwsConnection.Status.VERIFYING, requested_role_arn=role_arn
    )
    connection = pending.first()
    if connection is None:
        return "superseded"
    pending.update(attempts=attempt, message=f"Assuming {role_arn} with the ExternalId (attempt {attempt}).")
    try:
        session = aws.assume(role_arn, connection.external_id, VERIFY_REGION, endpoint_url())
        account_id = aws.preflight(session)
    except aws.AwsError as exc:
        if exc.transient and not last_attempt:
            pending.update(message=f"Attempt {attempt} failed, trying again: {exc}")
            raise
        return _finish(
            pending,
            task_author(user_id),
            "aws.verification_failed",
            connection,
            {"status": AwsConnection.Status.FAILED, "message": str(exc), "last_error": str(exc)},
            {"role_arn": role_arn, "error": str(exc)},
        )
    return _finish(
        pending,
        task_author(user_id),
        "aws.connected",
        connection,
        {
            "status": AwsConnection.Status.VERIFIED,
            "message": f"Assumed the role in account {account_id}; it may list EKS clusters.",
            "role_arn": role_arn,
            "account_id": account_id,
            "verified_at": clock.now(),
            "last_error": "",
        },
        {"role_arn": role_arn, "account_id": account_id},
    )


def _finish(
    pending: QuerySet[AwsConnection],
    author: Author,
    action: str,
    connection: AwsConnection,
    fields: dict[str, Any],
    after: dict[str, Any],
) -> str:
    """Store the outcome, unless a newer request replaced this one, and audit it."""
    before = {"role_arn": connection.role_arn}
    with transaction.atomic():
        if not pending.update(**fields):
            return "superseded"
        if fields.get("role_arn") not in (None, connection.role_arn):
            EksClusterListing.objects.all().delete()  # what the previous role saw
        connection.refresh_from_db()
        record_audit(author.actor, author.organization, action, connection, before=before, after=after)
    return str(fields["status"])


# --- the EKS clusters the role sees -------------------------------------------------------------


def request_eks_listing(author: Author, region: str) -> EksClusterListing:
    """Record that the clusters of `region` are to be listed (again); `list_eks_clusters` does it."""
    check_region(region)
    verified_connection()
    listing, _ = EksClusterListing.objects.update_or_create(
        region=region,
        defaults={
            "status": EksClusterListing.Status.LISTING,
            "message": f"Waiting to list the EKS clusters in {region}.",
            "attempts": 0,
            "requested_at": clock.now(),
            "finished_at": None,
        },
    )
    record_audit(
        author.actor, author.organization, "aws.eks_clusters_requested", listing, after={"region": region}
    )
    return listing


def eks_listing(region: str) -> EksClusterListing:
    check_region(region)
    listing = EksClusterListing.objects.filter(region=region).first()
    if listing is None:
        raise NotFound(f"The EKS clusters in {region} were not listed yet: POST to list them.")
    return listing


def list_eks_clusters(listing_id: int, *, attempt: int, last_attempt: bool) -> str:
    """List the clusters the role sees; the same contract as `verify`."""
    listing = EksClusterListing.objects.filter(pk=listing_id).first()
    if listing is None:
        return "superseded"
    this = EksClusterListing.objects.filter(pk=listing_id)
    this.update(
        attempts=attempt, message=f"Listing the EKS clusters in {listing.region} (attempt {attempt})."
    )
    try:
        clusters = aws.list_eks_clusters(session_for(listing.region, hosted=False))
    except Conflict as exc:
        clusters, error = [], exc.detail
    except aws.AwsError as exc:
        if exc.transient and not last_attempt:
            this.update(message=f"Attempt {attempt} failed, trying again: {exc}")
            raise
        clusters, error = [], str(exc)
    else:
        error = ""
    status = EksClusterListing.Status.FAILED if error else EksClusterListing.Status.LISTED
    this.update(
        status=status,
        clusters=clusters,
        message=error or f"{len(clusters)} EKS cluster(s) in {listing.region}.",
        finished_at=clock.now(),
    )
    return str(status)
