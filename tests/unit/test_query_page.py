"""query_page: exact-size pages over DynamoDB Query, exact ``has_more``, lossless resume."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spectra.repositories.dynamo import QueryPage, query_page, to_item

TABLE = "query-page-test"
PARTITION = "ORG#p#ITEMS#"
OTHER_PARTITION = "ORG#q#ITEMS#"
KEY_ATTRIBUTES = ("pk", "sk")


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


class CountingClient:
    """Passes calls through to the real client and counts the Query calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries = 0

    def query(self, **params: Any) -> Any:
        self.queries += 1
        return self._client.query(**params)


def sort_key(n: int) -> str:
    return f"ITEM#{n:04d}#"


def put_items(client: Any, count: int, *, partition: str = PARTITION) -> None:
    for n in range(count):
        client.put_item(TableName=TABLE, Item=to_item({"pk": partition, "sk": sort_key(n), "n": n, "even": n % 2 == 0}))


def page(
    client: Any,
    limit: int,
    *,
    start_after: dict[str, str] | None = None,
    keep: Callable[[dict[str, Any]], bool] = lambda _item: True,
    newest_first: bool = False,
) -> QueryPage:
    return query_page(
        client,
        table=TABLE,
        key_condition="pk = :pk",
        values={":pk": PARTITION},
        key_attributes=KEY_ATTRIBUTES,
        limit=limit,
        start_after=start_after,
        keep=keep,
        newest_first=newest_first,
    )


def all_pages(
    client: Any, limit: int, *, keep: Callable[[dict[str, Any]], bool] = lambda _item: True, newest_first: bool = False
) -> list[QueryPage]:
    pages = [page(client, limit, keep=keep, newest_first=newest_first)]
    while pages[-1].has_more:
        pages.append(page(client, limit, start_after=pages[-1].resume_after, keep=keep, newest_first=newest_first))
        assert len(pages) < 100, "paging did not terminate"
    return pages


def numbers(result: QueryPage) -> list[int]:
    return [item["n"] for item in result.items]


@pytest.mark.parametrize(("stored", "limit"), [(30, 7), (30, 1), (30, 29), (5, 5), (25, 10)])
def test_page_holds_exactly_limit_items_when_more_exist(client: Any, stored: int, limit: int) -> None:
    put_items(client, stored)
    result = page(client, limit)
    assert numbers(result) == list(range(min(limit, stored)))


def test_has_more_when_a_further_item_exists(client: Any) -> None:
    put_items(client, 11)
    assert page(client, 10).has_more


def test_no_more_when_the_page_takes_the_last_item(client: Any) -> None:
    put_items(client, 10)
    result = page(client, 10)
    assert numbers(result) == list(range(10))
    assert not result.has_more
    assert result.resume_after is None


def test_no_more_when_fewer_items_than_the_limit(client: Any) -> None:
    put_items(client, 3)
    result = page(client, 10)
    assert numbers(result) == [0, 1, 2]
    assert not result.has_more


def test_empty_partition_gives_an_empty_final_page(client: Any) -> None:
    put_items(client, 5, partition=OTHER_PARTITION)
    result = page(client, 10)
    assert result.items == []
    assert not result.has_more


def test_other_partitions_are_never_returned(client: Any) -> None:
    put_items(client, 5)
    put_items(client, 5, partition=OTHER_PARTITION)
    assert {item["pk"] for item in page(client, 100).items} == {PARTITION}


def test_resume_after_is_the_key_of_the_last_returned_item(client: Any) -> None:
    put_items(client, 30)
    assert page(client, 7).resume_after == {"pk": PARTITION, "sk": sort_key(6)}


def test_continuing_returns_the_rest_without_duplicates_or_losses(client: Any) -> None:
    put_items(client, 30)
    first = page(client, 7)
    rest = page(client, 100, start_after=first.resume_after)
    assert numbers(first) + numbers(rest) == list(range(30))
    assert not rest.has_more


@pytest.mark.parametrize("limit", [1, 3, 7, 10, 11, 25, 26])
def test_paging_to_the_end_visits_every_item_once(client: Any, limit: int) -> None:
    put_items(client, 25)
    pages = all_pages(client, limit)
    assert [n for result in pages for n in numbers(result)] == list(range(25))
    assert all(len(result.items) == limit for result in pages[:-1])
    assert pages[-1].items, "a page that says has_more must be followed by a non-empty page"


def test_paging_newest_first_visits_every_item_once_in_reverse(client: Any) -> None:
    put_items(client, 25)
    pages = all_pages(client, 4, newest_first=True)
    assert [n for result in pages for n in numbers(result)] == list(reversed(range(25)))


def test_keep_filter_fills_the_page_across_several_underlying_queries(client: Any) -> None:
    # Only multiples of 9 pass: 4 kept items spread over 30, far more than one Query's Limit reads.
    put_items(client, 30)
    counting = CountingClient(client)
    result = page(counting, 3, keep=lambda item: item["n"] % 9 == 0)
    assert numbers(result) == [0, 9, 18]
    assert result.has_more
    assert counting.queries > 1


def test_keep_filter_has_more_only_when_a_further_kept_item_exists(client: Any) -> None:
    # 27 is the last multiple of 9 below 30; the items after it are read but filtered out.
    put_items(client, 28)
    result = page(client, 4, keep=lambda item: item["n"] % 9 == 0)
    assert numbers(result) == [0, 9, 18, 27]
    assert not result.has_more


def test_keep_filter_resume_loses_nothing_filtered_between_pages(client: Any) -> None:
    put_items(client, 60)
    pages = all_pages(client, 4, keep=lambda item: item["even"])
    assert [n for result in pages for n in numbers(result)] == list(range(0, 60, 2))
    assert all(len(result.items) == 4 for result in pages[:-1])


def test_keep_filter_rejecting_everything_gives_an_empty_final_page(client: Any) -> None:
    put_items(client, 35)
    result = page(client, 5, keep=lambda _item: False)
    assert result.items == []
    assert not result.has_more


def test_items_come_back_as_plain_python_values(client: Any) -> None:
    put_items(client, 1)
    assert page(client, 1).items == [{"pk": PARTITION, "sk": sort_key(0), "n": 0, "even": True}]
