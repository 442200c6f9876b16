"""End to end against a running onestock with unmodified SP-API client libraries.

Run by crates/onestock/tests/spapi.rs (`real_clients`), which starts the server, creates
a seller and a product, and passes:

    test_clients.py BASE_URL REFRESH_TOKEN SELLER_ID ASIN OPERATOR_TOKEN

Exits non-zero, naming the step, on the first failure.
"""

import json
import sys
import urllib.request
from types import SimpleNamespace

import io
import time

from sp_api.api import CatalogItems, Feeds, ListingsItems, Sellers
from sp_api.auth import AccessTokenClient
from sp_api.base.exceptions import SellingApiException

BASE, REFRESH, SELLER, ASIN, OPERATOR = sys.argv[1:6]
US, CA, MX = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8"
SCHEME, HOST = BASE.split("://", 1)


class LocalToken(AccessTokenClient):
    """The token URL of onestock instead of Login with Amazon's."""

    scheme = SCHEME + "://"
    host = HOST


def market(mp):
    return SimpleNamespace(endpoint=BASE, marketplace_id=mp, region="us-east-1")


CREDENTIALS = dict(refresh_token=REFRESH, lwa_app_id="client-id", lwa_client_secret="client-secret")


def client(cls, mp=US, **kw):
    return cls(
        marketplace=market(mp),
        credentials=CREDENTIALS,
        auth_token_client_class=LocalToken,
        **kw,
    )


def check(step, cond, detail=""):
    if not cond:
        print(f"FAILED: {step}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {step}")


def v1(path, method="GET", body=None, token=REFRESH):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def offer(mp, currency, price, quantity=None):
    attrs = {
        "merchant_suggested_asin": [{"value": ASIN, "marketplace_id": mp}],
        "condition_type": [{"value": "new_new", "marketplace_id": mp}],
        "purchasable_offer": [
            {"marketplace_id": mp, "currency": currency, "our_price": [{"schedule": [{"value_with_tax": price}]}]}
        ],
    }
    if quantity is not None:
        attrs["fulfillment_availability"] = [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]
    return {"productType": "PRODUCT", "requirements": "LISTING_OFFER_ONLY", "attributes": attrs}


INVLOADER = "POST_FLAT_FILE_INVLOADER_DATA"
PRICE_QUANTITY = "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA"


def inventory_file(sku, price, quantity):
    return (
        "sku\tproduct-id\tproduct-id-type\tprice\tquantity\titem-condition\n"
        f"{sku}\t{ASIN}\tASIN\t{price}\t{quantity}\t11\n"
        f"{sku}-BAD\tB0ZZZZZZZZ\tASIN\t1.00\t1\t11\n"
    )


def wait_done(get_status):
    status = None
    for _ in range(500):
        status = get_status()
        if status in ("DONE", "FATAL", "CANCELLED"):
            return status
        time.sleep(0.02)
    return status


def python_amazon_sp_api_feeds():
    feeds = client(Feeds, US)
    doc, feed = feeds.submit_feed(INVLOADER, io.StringIO(inventory_file("PYF-1", "4.25", 2)),
                                  content_type="text/tab-separated-values; charset=UTF-8")
    feed_id = feed.payload["feedId"]
    check("feeds: createFeedDocument, upload, createFeed", bool(feed_id), feed.payload)
    status = wait_done(lambda: feeds.get_feed(feed_id).payload["processingStatus"])
    check("feeds: getFeed DONE", status == "DONE", status)
    got = feeds.get_feed(feed_id).payload
    report = feeds.get_feed_result_document(got["resultFeedDocumentId"])
    check("feeds: result document is the processing report", "PYF-1-BAD" in report and "ASIN_NOT_IN_STORE" in report, report)
    listed = v1("/v1/listings/PYF-1")["listings"][0]
    check("feeds: the row applied", listed["price"]["amount"] == "4.25" and listed["quantity"] == 2, listed)

    doc, feed = feeds.submit_feed(PRICE_QUANTITY, io.StringIO("sku\tprice\tquantity\nPYF-1\t3.75\t8\nPYF-NONE\t1\t1\n"),
                                  content_type="text/tab-separated-values; charset=UTF-8")
    feed_id = feed.payload["feedId"]
    status = wait_done(lambda: feeds.get_feed(feed_id).payload["processingStatus"])
    report = feeds.get_feed_result_document(feeds.get_feed(feed_id).payload["resultFeedDocumentId"])
    check("feeds: price and quantity, modify only", status == "DONE" and "PYF-NONE" in report and "NOT_FOUND" in report, report)
    listed = v1("/v1/listings/PYF-1")["listings"][0]
    check("feeds: price and quantity applied", listed["price"]["amount"] == "3.75" and listed["quantity"] == 8, listed)

    messages = {"header": {"sellerId": SELLER, "version": "2.0"}, "messages": [
        {"messageId": 1, "sku": "PYJ-1", "operationType": "UPDATE", "productType": "PRODUCT",
         "requirements": "LISTING_OFFER_ONLY", "attributes": offer(US, "USD", 5.55, 2)["attributes"]},
        {"messageId": 2, "sku": "PYJ-1", "operationType": "PATCH", "productType": "PRODUCT", "patches": [
            {"op": "replace", "path": "/attributes/fulfillment_availability",
             "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 11}]}]},
        {"messageId": 3, "sku": "PYJ-2", "operationType": "PARTIAL_UPDATE", "productType": "PRODUCT",
         "attributes": {"purchasable_offer": [{"currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 1}]}]}]}},
    ]}
    doc, feed = feeds.submit_feed("JSON_LISTINGS_FEED", io.StringIO(json.dumps(messages)), content_type="application/json")
    json_id = feed.payload["feedId"]
    status = wait_done(lambda: feeds.get_feed(json_id).payload["processingStatus"])
    report = json.loads(feeds.get_feed_result_document(feeds.get_feed(json_id).payload["resultFeedDocumentId"]))
    check("feeds: JSON_LISTINGS_FEED", status == "DONE" and report["summary"]["messagesAccepted"] == 2, report)
    check("feeds: JSON report issues by messageId", [(i["messageId"], i["code"]) for i in report["issues"]] == [(3, "NOT_FOUND")], report)
    listed = v1("/v1/listings/PYJ-1")["listings"][0]
    check("feeds: JSON messages applied in order", listed["price"]["amount"] == "5.55" and listed["quantity"] == 11, listed)

    listed_feeds = feeds.get_feeds(feedTypes=[INVLOADER, PRICE_QUANTITY], pageSize=10).payload
    check("feeds: getFeeds", feed_id in [f["feedId"] for f in listed_feeds["feeds"]], listed_feeds)
    try:
        feeds.cancel_feed(feed_id)
        check("feeds: a DONE feed cannot be cancelled", False, "no error")
    except SellingApiException as e:
        check("feeds: a DONE feed cannot be cancelled", e.code == 400, e.code)


def python_amazon_sp_api():
    p = client(Sellers).get_marketplace_participation().payload
    ids = [x["marketplace"]["id"] for x in p]
    check("sellers: marketplace participations", ids == [US, CA, MX], ids)

    us = client(ListingsItems, US, version="2021-08-01")
    ca = client(ListingsItems, CA, version="2021-08-01")
    r = us.put_listings_item(SELLER, "PY-1", body=offer(US, "USD", 19.99, 5))
    check("put an offer in US", r.payload["status"] == "ACCEPTED", r.payload)
    view = v1("/v1/listings/PY-1")
    check("price read as the decimal it spells", view["listings"][0]["price"]["amount"] == "19.99", view)

    r = us.get_listings_item(SELLER, "PY-1", marketplaceIds=US,
                             includedData="summaries,attributes,offers,fulfillmentAvailability,issues")
    check("get: BUYABLE", r.payload["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"], r.payload)
    check("get: offers", r.payload["offers"][0]["price"]["amount"] == "19.99", r.payload)
    check("get: fulfillmentAvailability", r.payload["fulfillmentAvailability"][0]["quantity"] == 5, r.payload)

    r = ca.put_listings_item(SELLER, "PY-1", body=offer(CA, "CAD", 24.5, 9))
    check("CA joins the shared pool", r.payload["status"] == "ACCEPTED", r.payload)
    r = us.get_listings_item(SELLER, "PY-1", marketplaceIds=US, includedData="fulfillmentAvailability")
    check("a quantity set through CA shows in US", r.payload["fulfillmentAvailability"][0]["quantity"] == 9, r.payload)

    order = v1(f"/v1/stores/CA/orders", "POST",
               {"order_id": "py-order-1", "lines": [{"seller_id": SELLER, "sku": "PY-1", "quantity": 2}]}, OPERATOR)
    check("an order through the operator API", order["status"] == "accepted", order)
    r = us.get_listings_item(SELLER, "PY-1", marketplaceIds=US, includedData="fulfillmentAvailability")
    check("the order lowers what US shows", r.payload["fulfillmentAvailability"][0]["quantity"] == 7, r.payload)

    patch = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/purchasable_offer", "value": [
        {"marketplace_id": US, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 18.75}]}]},
        {"marketplace_id": CA, "currency": "CAD", "our_price": [{"schedule": [{"value_with_tax": 23.4}]}]},
    ]}]}
    r = us.patch_listings_item(SELLER, "PY-1", marketplaceIds=f"{US},{CA}", body=patch)
    check("one patch, two prices", r.payload["status"] == "ACCEPTED", r.payload)
    prices = {l["store"]: l["price"]["amount"] for l in v1("/v1/listings/PY-1")["listings"]}
    check("prices of US and CA", prices == {"US": "18.75", "CA": "23.40"}, prices)

    r = us.put_listings_item(SELLER, "PY-1", mode="VALIDATION_PREVIEW", body=offer(US, "USD", 1.11, 1))
    check("VALIDATION_PREVIEW", r.payload["status"] == "VALID", r.payload)
    prices = {l["store"]: l["price"]["amount"] for l in v1("/v1/listings/PY-1")["listings"]}
    check("VALIDATION_PREVIEW changes nothing", prices["US"] == "18.75", prices)

    r = us.put_listings_item(SELLER, "PY-1", body=offer(US, "CAD", 5, None))
    check("refused put: INVALID", r.payload["status"] == "INVALID", r.payload)
    check("refused put: SPEC code", r.payload["issues"][0]["code"] == "CURRENCY_MISMATCH", r.payload)

    r = us.search_listings_items(SELLER, marketplaceIds=US, includedData="summaries")
    check("search listings", [i["sku"] for i in r.payload["items"]] == ["PY-1"], r.payload)

    cat = client(CatalogItems, US, version="2022-04-01")
    r = cat.search_catalog_items(identifiers=ASIN, identifiersType="ASIN", includedData="summaries,identifiers")
    check("search catalog by ASIN", r.payload["items"][0]["asin"] == ASIN, r.payload)
    r = cat.search_catalog_items(keywords="Bottle", includedData="summaries")
    check("search catalog by keywords", ASIN in [i["asin"] for i in r.payload["items"]], r.payload)
    r = cat.get_catalog_item(ASIN, includedData="summaries,attributes,productTypes")
    check("get catalog item", r.payload["asin"] == ASIN, r.payload)

    try:
        us.get_listings_item("sel_someone_else", "PY-1", marketplaceIds=US)
        check("wrong sellerId answers 403", False, "no error")
    except SellingApiException as e:
        check("wrong sellerId answers 403", e.code == 403, e.code)

    # DELETE: the client names the marketplace four ways, from its own marketplace.
    r = ca.delete_listings_item(SELLER, "PY-1")
    check("delete in CA", r.payload["status"] == "ACCEPTED", r.payload)
    stores = [l["store"] for l in v1("/v1/listings/PY-1")["listings"]]
    check("delete in one store leaves the others", stores == ["US"], stores)
    r = us.delete_listings_item(SELLER, "PY-1")
    check("delete the last", r.payload["status"] == "ACCEPTED", r.payload)


def amzn_selling_partner():
    """The same story through amzn-selling-partner, which validates every answer
    against the marketplace's own models (a missing required field fails it)."""
    from amzn_selling_partner.plugins.amazon_spapi import SellingPartner
    from amzn_selling_partner.sdk.errors import APIStatusError

    sp = SellingPartner(
        client_id="client-id",
        client_secret="client-secret",
        refresh_token=REFRESH,
        token_url=BASE + "/auth/o2/token",
    ).with_options(base_url=BASE, max_retries=0)

    p = sp.sellers_v1.list_marketplace_participations()
    ids = [x.marketplace.id for x in p.payload]
    check("amzn: marketplace participations", ids == [US, CA, MX], ids)

    li = sp.listings_items_v2021_08_01
    r = li.put_listings_item(SELLER, "AMZ-1", offer(US, "USD", 9.99, 4), [US])
    check("amzn: put in US", r.status == "ACCEPTED", r)
    item = li.get_listings_item(SELLER, "AMZ-1", [US],
                                included_data=["summaries", "attributes", "offers", "fulfillmentAvailability", "issues"])
    check("amzn: get validates, BUYABLE", [str(getattr(x, "value", x)) for x in item.summaries[0].status] == ["BUYABLE", "DISCOVERABLE"], item.summaries)
    check("amzn: offers", item.offers[0].price.amount == "9.99" or str(item.offers[0].price.amount) == "9.99", item.offers)
    check("amzn: fulfillmentAvailability", item.fulfillment_availability[0].quantity == 4, item.fulfillment_availability)

    r = li.put_listings_item(SELLER, "AMZ-1", offer(CA, "CAD", 12.25, 6), [CA])
    check("amzn: CA joins", r.status == "ACCEPTED", r)
    item = li.get_listings_item(SELLER, "AMZ-1", [US], included_data=["fulfillmentAvailability"])
    check("amzn: quantity through CA shows in US", item.fulfillment_availability[0].quantity == 6, item)

    patch = {"productType": "PRODUCT", "patches": [{"op": "replace", "path": "/attributes/purchasable_offer", "value": [
        {"marketplace_id": US, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 8.5}]}]},
        {"marketplace_id": CA, "currency": "CAD", "our_price": [{"schedule": [{"value_with_tax": 11}]}]},
    ]}]}
    r = li.patch_listings_item(SELLER, "AMZ-1", patch, [US, CA])
    check("amzn: one patch, two prices", r.status == "ACCEPTED", r)
    prices = {l["store"]: l["price"]["amount"] for l in v1("/v1/listings/AMZ-1")["listings"]}
    check("amzn: prices", prices == {"US": "8.50", "CA": "11.00"}, prices)

    r = li.put_listings_item(SELLER, "AMZ-1", offer(US, "USD", 1.5, None), [US], mode="VALIDATION_PREVIEW")
    check("amzn: VALIDATION_PREVIEW", r.status == "VALID", r)
    r = li.put_listings_item(SELLER, "AMZ-1", offer(US, "MXN", 1.5, None), [US])
    check("amzn: refused put", r.status == "INVALID" and r.issues[0].code == "CURRENCY_MISMATCH", r)

    found = li.search_listings_items(SELLER, [US], included_data=["summaries"])
    check("amzn: search listings", "AMZ-1" in [i.sku for i in found.items], found)

    cat = sp.catalog_items_v2022_04_01
    res = cat.list_items([US], identifiers=[ASIN], identifiers_type="ASIN",
                         included_data=["summaries", "identifiers", "attributes", "productTypes"])
    check("amzn: search catalog", res.items[0].asin == ASIN, res)
    res = cat.list_items([US], keywords=["Bottle"])
    check("amzn: search catalog by keywords", ASIN in [i.asin for i in res.items], res)
    got = cat.get_item(ASIN, [US], included_data=["summaries", "attributes"])
    check("amzn: get catalog item", got.asin == ASIN, got)

    for step, call in [
        ("amzn: wrong sellerId answers 403", lambda: li.get_listings_item("sel_nobody", "AMZ-1", [US])),
        ("amzn: unknown SKU answers 404", lambda: li.get_listings_item(SELLER, "NOPE", [US])),
    ]:
        try:
            call()
            check(step, False, "no error")
        except APIStatusError as e:
            check(step, e.status_code in (403, 404) and e.status_code < 500, e.status_code)

    r = li.delete_item(SELLER, "AMZ-1", [CA])
    check("amzn: delete in CA", r.status == "ACCEPTED", r)
    stores = [l["store"] for l in v1("/v1/listings/AMZ-1")["listings"]]
    check("amzn: the others stay", stores == ["US"], stores)
    r = li.delete_item(SELLER, "AMZ-1", [US])
    check("amzn: delete the last", r.status == "ACCEPTED", r)

    # Feeds: the documents helper must be rebound after with_options (CRATES.md).
    from amzn_selling_partner.plugins.amazon_spapi import Documents

    sp.documents = Documents(sp)
    created = sp.documents.create_feed(INVLOADER, [US], inventory_file("AMZF-1", "6.60", 3),
                                       content_type="text/tab-separated-values; charset=UTF-8")
    feeds = sp.feeds_v2021_06_30
    status = wait_done(lambda: str(getattr(feeds.get_feed(created.feed_id).processing_status, "value",
                                           feeds.get_feed(created.feed_id).processing_status)))
    check("amzn: feed DONE", status == "DONE", status)
    feed = feeds.get_feed(created.feed_id)
    report = sp.documents.download_feed_result(feed.result_feed_document_id).decode()
    check("amzn: feed result document", "AMZF-1-BAD" in report and "ASIN_NOT_IN_STORE" in report, report)
    listed = feeds.list_feeds(feed_types=[INVLOADER])
    check("amzn: getFeeds", created.feed_id in [f.feed_id for f in listed.feeds], listed)


if __name__ == "__main__":
    python_amazon_sp_api()
    python_amazon_sp_api_feeds()
    amzn_selling_partner()
    print("ALL OK")
