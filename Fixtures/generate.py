#!/usr/bin/env python3
"""Writes the fixture payloads in this folder. Run from anywhere: python3 Fixtures/generate.py

The files are byte-exact: tests sign them at test time, and signatures.txt holds their signatures as
computed by `openssl dgst` (see make-signatures.sh). Regenerating rewrites the same bytes.
"""
import json, os, random

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, obj, compact=False):
    if compact:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=2) + "\n"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(text.encode("utf-8"))


def envelope(eid, etype, ts, data, tenant="t_xyz789"):
    return {"id": eid, "type": etype, "tenantId": tenant, "timestamp": ts, "data": data}


def det(name, conf, box, attrs):
    return {"objectName": name, "confidence": conf,
            "boundingBox": dict(zip(["x", "y", "width", "height"], box)), "attributes": attrs}


write("cv.job.completed.shelf-detection-v2.json", envelope(
    "evt_shelf_0001", "cv.job.completed", "2026-04-28T12:00:00Z", {
        "jobId": "job_shelf_0001", "observationId": "obs_abc123", "model": "shelf-detection-v2",
        "status": "completed",
        "result": {
            "detections": [
                det("Coca-Cola 330ml", 0.97, [120, 45, 80, 200], {"facings": 4, "shelfPosition": "eye-level", "priceTag": "2.49"}),
                det("Pepsi 500ml", 0.92, [250, 50, 85, 210], {"facings": 3, "shelfPosition": "eye-level", "priceTag": None}),
                det("Sprite 1L", 0.88, [360, 40, 90, 260], {"facings": 2, "shelfPosition": "top", "priceTag": "1.99"}),
                det("Evian 500ml", 0.81, [40, 420, 70, 190], {"facings": 6, "shelfPosition": "bottom", "priceTag": None}),
            ],
            "summary": {"totalProducts": 24, "uniqueSKUs": 8, "outOfStock": ["Fanta Orange 330ml"], "complianceScore": 0.85},
        }}))

write("cv.job.completed.building-inspection-v1.json", envelope(
    "evt_bldg_0001", "cv.job.completed", "2026-05-02T08:15:30Z", {
        "jobId": "job_bldg_0001", "observationId": "obs_bldg_0001", "model": "building-inspection-v1",
        "status": "completed",
        "result": {
            "detections": [
                det("window", 0.95, [812, 300, 420, 610], {"component": "window", "material": "aluminium", "floor": 3}),
                det("fire-door", 0.9, [90, 700, 380, 900], {"component": "door", "fireRated": True, "signage": "present"}),
                det("balcony-railing", 0.77, [1500, 220, 900, 180], {"component": "railing", "material": "steel"}),
            ],
            "summary": {"totalProducts": 0, "uniqueSKUs": 0, "outOfStock": [], "complianceScore": 0.91,
                        "componentsFound": 3},
        }}, tenant="t_buildingscan"))

write("cv.job.completed.damage-assessment-v1.json", envelope(
    "evt_damage_0001", "cv.job.completed", "2026-05-02T08:20:00.125Z", {
        "jobId": "job_damage_0001", "observationId": "obs_bldg_0002", "model": "damage-assessment-v1",
        "status": "completed",
        "result": {
            "detections": [
                det("crack", 0.89, [400, 1020, 35, 600], {"severity": "moderate", "grade": 3, "lengthMm": 840.5}),
                det("water-stain", 0.74, [1200, 80, 500, 260], {"severity": "minor", "grade": 1}),
                det("spalling", 0.93, [60, 1800, 300, 220], {"severity": "severe", "grade": 4, "exposedRebar": True}),
            ],
            "summary": {"totalProducts": 0, "uniqueSKUs": 0, "outOfStock": [], "complianceScore": 0.42,
                        "worstGrade": 4},
        }}, tenant="t_buildingscan"))

write("cv.job.completed.custom.json", envelope(
    "evt_custom_0001", "cv.job.completed", "2026-06-10T17:45:00+02:00", {
        "jobId": "job_custom_0001", "observationId": "obs_custom_0001", "model": "custom",
        "customModelId": "cm_acme_planogram_v7", "status": "completed",
        "result": {
            "detections": [
                det("ACME Widget Box", 0.99, [10, 10, 200, 150], {"sku": "ACME-0042", "planogramSlot": "B3", "tags": ["promo", "endcap"]}),
                det("ACME Gadget", 0.61, [220, 12, 180, 140], {"sku": "ACME-0107", "planogramSlot": None}),
            ],
            "summary": {"totalProducts": 2, "uniqueSKUs": 2, "outOfStock": [], "complianceScore": 0.5},
        }}))

write("cv.job.failed.error-object.json", envelope(
    "evt_failed_0001", "cv.job.failed", "2026-04-28T12:05:00Z", {
        "jobId": "job_failed_0001", "observationId": "obs_blurry_01", "model": "shelf-detection-v2",
        "status": "failed", "error": {"code": "image_unreadable", "message": "Image could not be decoded"}}))

write("cv.job.failed.error-string.json", envelope(
    "evt_failed_0002", "cv.job.failed", "2026-04-28T12:06:00Z", {
        "jobId": "job_failed_0002", "observationId": "obs_dark_02", "model": "damage-assessment-v1",
        "status": "failed", "error": "Model timed out after 300s"}), compact=True)

write("observation.created.json", envelope(
    "evt_obs_created_0001", "observation.created", "2026-04-28T11:58:00Z", {
        "observationId": "obs_abc123", "locationId": "loc_store_0117", "status": "pending",
        "imageUrl": "https://cdn.example.com/obs_abc123.jpg",
        "coordinates": {"lat": 52.3702, "lng": 4.8952}, "metadata": {"visit_id": "visit_9001"}}))

write("observation.updated.json", envelope(
    "evt_obs_updated_0001", "observation.updated", "2026-04-28T12:00:05Z", {
        "observationId": "obs_abc123", "status": "processed", "changes": ["status", "cvJobs"],
        "cvJobs": ["job_shelf_0001"]}))

write("visit.submitted.json", envelope(
    "evt_visit_0001", "visit.submitted", "2026-04-28T13:30:00Z", {
        "visitId": "visit_9001", "locationId": "loc_store_0117", "observationIds": ["obs_abc123", "obs_abc124"],
        "submittedBy": {"userId": "usr_77", "name": "Field Agent 77"}}))

write("unknown-type.json", envelope(
    "evt_unknown_0001", "cv.model.retrained", "2026-07-01T09:00:00Z", {
        "modelId": "cm_acme_planogram_v8", "baseModel": "custom", "accuracy": 0.943}))

write("unknown-fields.json", {
    "id": "evt_extra_0001", "type": "cv.job.completed", "tenantId": "t_xyz789",
    "timestamp": "2026-04-28T12:10:00Z", "apiVersion": "2026-04-01", "deliveryAttempt": 3,
    "data": {
        "jobId": "job_extra_0001", "observationId": "obs_extra_0001", "model": "shelf-detection-v3-beta",
        "status": "completed", "durationMs": 4210, "region": "eu-west",
        "result": {
            "detections": [
                {"objectName": "Coca-Cola 330ml", "confidence": 0.97, "trackId": "trk_1",
                 "boundingBox": {"x": 1, "y": 2, "width": 3, "height": 4, "rotation": 12.5},
                 "attributes": {"facings": 4, "shelfPosition": "eye-level", "priceTag": None, "promo": {"type": "2for1"}},
                 "polygon": [[1, 2], [3, 4], [5, 6]]},
            ],
            "summary": {"totalProducts": 1, "uniqueSKUs": 1, "outOfStock": [], "complianceScore": 1.0,
                        "shareOfShelf": {"Coca-Cola": 0.6}},
            "modelVersion": "3.0.0-beta.2",
        },
    },
    "meta": {"traceId": "abc-123", "bigNumber": 12345678901234567890123, "precise": 0.1000000000000000055511151231257827},
})

write("non-ascii-names.json", envelope(
    "evt_intl_0001", "cv.job.completed", "2026-08-15T06:00:00Z", {
        "jobId": "job_intl_0001", "observationId": "obs_intl_0001", "model": "shelf-detection-v2",
        "status": "completed",
        "result": {
            "detections": [
                det("Nestlé Pure Life 1,5 L", 0.93, [5, 5, 60, 180], {"facings": 5, "shelfPosition": "bottom", "priceTag": "0,89 €"}),
                det("Мороженое «Пломбир»", 0.9, [70, 5, 60, 120], {"facings": 2, "shelfPosition": "top", "priceTag": "79 ₽"}),
                det("綾鷹 緑茶 525ml", 0.88, [140, 5, 55, 190], {"facings": 3, "shelfPosition": "eye-level", "priceTag": "¥148"}),
                det("Jus d’orange 🍊 1L", 0.8, [200, 5, 70, 210], {"facings": 1, "shelfPosition": "eye-level", "priceTag": None}),
            ],
            "summary": {"totalProducts": 11, "uniqueSKUs": 4, "outOfStock": ["Ayran Süt 1L"], "complianceScore": 0.73},
        }}))

rng = random.Random(2026)
products = ["Coca-Cola 330ml", "Pepsi 500ml", "Fanta Orange 330ml", "Sprite 1L", "Evian 500ml",
            "Red Bull 250ml", "Nestlé Pure Life 1.5L", "Schweppes Tonic 200ml"]
large = []
for k in range(2500):
    large.append(det(rng.choice(products), round(rng.uniform(0.5, 0.999), 3),
                     [rng.randint(0, 4000), rng.randint(0, 3000), rng.randint(20, 300), rng.randint(20, 400)],
                     {"facings": rng.randint(1, 8), "shelfPosition": rng.choice(["top", "eye-level", "bottom"]),
                      "priceTag": rng.choice([None, "2.49", "1.99", "0.89"])}))
write("cv.job.completed.large.json", envelope(
    "evt_large_0001", "cv.job.completed", "2026-04-28T12:30:00Z", {
        "jobId": "job_large_0001", "observationId": "obs_panorama_0001", "model": "shelf-detection-v2",
        "status": "completed",
        "result": {"detections": large,
                   "summary": {"totalProducts": 7512, "uniqueSKUs": 8, "outOfStock": ["Fanta Orange 330ml"],
                               "complianceScore": 0.81}}}), compact=True)
