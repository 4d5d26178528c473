"""The ExternalId stored encrypted (core.encryption, FIELD_ENCRYPTION_KEY) instead of in clear."""

from django.db import migrations, models

from core.encryption import decrypt_secret, encrypt_secret


def _encrypt(apps, schema_editor):
    AwsConnection = apps.get_model("deployments", "AwsConnection")
    for connection in AwsConnection.objects.all():
        connection.external_id_ciphertext = encrypt_secret(connection.external_id)
        connection.save(update_fields=["external_id_ciphertext"])


def _decrypt(apps, schema_editor):
    AwsConnection = apps.get_model("deployments", "AwsConnection")
    for connection in AwsConnection.objects.all():
        connection.external_id = decrypt_secret(connection.external_id_ciphertext)
        connection.save(update_fields=["external_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0005_verification_in_tasks"),
    ]

    operations = [
        migrations.AlterField(
            model_name="awsconnection",
            name="external_id",
            field=models.CharField(max_length=64, default=""),
        ),
        migrations.AddField(
            model_name="awsconnection",
            name="external_id_ciphertext",
            field=models.TextField(default=""),
            preserve_default=False,
        ),
        migrations.RunPython(_encrypt, _decrypt),
        migrations.RemoveField(model_name="awsconnection", name="external_id"),
    ]
