from django.urls import path

from . import views

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
]
