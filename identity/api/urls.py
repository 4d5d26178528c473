from django.urls import path

from . import mfa_views, views

urlpatterns = [
    path("auth/password-reset/", views.PasswordResetRequestView.as_view(), name="password-reset-request"),
    path("auth/password-reset/check/", views.PasswordResetCheckView.as_view(), name="password-reset-check"),
    path("auth/password-reset/confirm/", views.PasswordResetView.as_view(), name="password-reset-confirm"),
    path("auth/password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("auth/account/", views.AccountView.as_view(), name="account"),
    path("auth/email/", views.EmailChangeView.as_view(), name="email-change"),
    path("auth/email/verification/", views.EmailVerificationView.as_view(), name="email-verification"),
    path("auth/email/verify/", views.EmailVerifyView.as_view(), name="email-verify"),
    path("auth/sessions/", views.SessionListView.as_view(), name="session-list"),
    path("auth/sessions/end-others/", views.EndOtherSessionsView.as_view(), name="session-end-others"),
    path("auth/sessions/<str:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
    # Two-factor sign-in. Named mfa-*: what a member held to its setup may still reach
    # (identity.middleware).
    path("auth/mfa/", mfa_views.MfaStatusView.as_view(), name="mfa-status"),
    path("auth/mfa/setup/", mfa_views.MfaSetupView.as_view(), name="mfa-setup"),
    path("auth/mfa/confirm/", mfa_views.MfaConfirmView.as_view(), name="mfa-confirm"),
    path("auth/mfa/disable/", mfa_views.MfaDisableView.as_view(), name="mfa-disable"),
    path("auth/mfa/recovery-codes/", mfa_views.RecoveryCodesView.as_view(), name="mfa-recovery-codes"),
    path("auth/mfa/verify/", mfa_views.MfaVerifyView.as_view(), name="mfa-verify"),
    path(
        "orgs/<str:org_slug>/mfa-policy/",
        mfa_views.OrganizationMfaPolicyViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="organization-mfa-policy",
    ),
]
