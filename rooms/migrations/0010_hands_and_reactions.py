# Raised hands and reactions (rooms.together): written by hand so that it holds only these two
# fields (other models were being changed in the working tree at the same time).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0009_attendance"),
    ]

    operations = [
        migrations.AddField(
            model_name="meeting",
            name="reactions_enabled",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="participant",
            name="hand_raised_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
