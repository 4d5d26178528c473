from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("gateways", "0002_instance_address")]

    operations = [
        migrations.AddField(
            model_name="configsnapshot",
            name="shards",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
