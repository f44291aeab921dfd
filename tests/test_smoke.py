import pytest
from django.test import Client


@pytest.mark.django_db
def test_home_page_answers_for_signed_out_visitor(client: Client) -> None:
    assert client.get("/").status_code == 200
