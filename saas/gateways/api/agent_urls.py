from django.urls import path

from . import agent_views

urlpatterns = [
    path("register", agent_views.register, name="agent-register"),
]
