from django.urls import path

from . import views

# Under /portal/<org_slug>/ (or a custom host name's root, PortalHostMiddleware).
urlpatterns = [
    path("", views.home, name="portal-home"),
    path("products/<slug:slug>/", views.product, name="portal-product"),
    path("products/<slug:slug>/<str:version>/docs", views.docs, name="portal-docs"),
    path("products/<slug:slug>/<str:version>/openapi.json", views.openapi_document, name="portal-openapi"),
    path("signup", views.sign_up, name="portal-signup"),
    path("verify/<str:token>", views.verify, name="portal-verify"),
    path("signin", views.sign_in, name="portal-signin"),
    path("signout", views.sign_out, name="portal-signout"),
    path("forgot", views.forgot, name="portal-forgot"),
    path("reset/<str:uid>/<str:token>", views.reset, name="portal-reset"),
    path("apps", views.apps, name="portal-apps"),
    path("apps/<str:app_id>", views.app, name="portal-app"),
    path("usage", views.usage, name="portal-usage"),
]
