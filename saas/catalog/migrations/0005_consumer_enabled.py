from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_key_auth_hmac")]

    operations = [
        migrations.AddField(model_name="consumer", name="enabled", field=models.BooleanField(default=True)),
        migrations.AddField(
            model_name="service", name="openapi_document", field=models.JSONField(blank=True, null=True)
        ),
    ]
