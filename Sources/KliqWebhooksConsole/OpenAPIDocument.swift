/// `GET /api/openapi.json`: the admin API, as OpenAPI 3.1. `ConsoleAPITests` checks every answer
/// against it (status codes and required fields), so the two cannot drift apart.
enum OpenAPIDocument {
    static let text = #"""
    {
      "openapi": "3.1.0",
      "info": {"title": "kliq-webhooks admin API", "version": "0.6.0",
               "description": "What the receiver holds, read through the store protocol. Lists answer {\"items\": [...], \"next\": CURSOR|null}; pass next back as cursor for the following page. A page may hold fewer than limit items while next is not null (filters that skip stored entries read at most a bounded number per request)."},
      "security": [{"bearerToken": []}, {}],
      "paths": {
        "/api/stats": {"get": {"operationId": "stats", "summary": "Counters since start and deliveries by state",
          "responses": {"200": {"description": "counters", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stats"}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/api/events": {"get": {"operationId": "listEvents", "summary": "Stored events, oldest first",
          "parameters": [
            {"name": "type", "in": "query", "schema": {"type": "string"}},
            {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["pending", "retrying", "succeeded", "dead"]}},
            {"name": "jobId", "in": "query", "schema": {"type": "string"}},
            {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}],
          "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}}}},
                        "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/api/events/{id}": {"get": {"operationId": "getEvent", "summary": "One event: its body as received and every handler attempt",
          "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
          "responses": {"200": {"description": "the event", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventDetail"}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/api/events/{id}/redrive": {"post": {"operationId": "redriveEvent", "summary": "Make the event's dead (or failed) deliveries pending again",
          "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}, {"$ref": "#/components/parameters/CSRF"}],
          "responses": {"200": {"description": "re-driven", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Redriven"}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                        "404": {"$ref": "#/components/responses/NotFound"}}}},
        "/api/redrive": {"post": {"operationId": "redriveDead", "summary": "Re-drive every dead event the filter matches, when their number is still the one confirmed",
          "parameters": [{"$ref": "#/components/parameters/CSRF"}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["expected"],
            "properties": {"expected": {"type": "integer", "minimum": 0},
                           "filter": {"type": "object", "properties": {"type": {"type": "string"}, "jobId": {"type": "string"},
                                      "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}}}}}}}},
          "responses": {"200": {"description": "re-driven", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Redriven"}}}},
                        "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"},
                        "403": {"$ref": "#/components/responses/Forbidden"},
                        "409": {"description": "the filter matches another number of dead events now; nothing was re-driven",
                                "content": {"application/json": {"schema": {"type": "object", "required": ["error", "message", "count"],
                                  "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "count": {"type": "integer"}}}}}}}}},
        "/api/jobs": {"get": {"operationId": "listJobs", "summary": "Jobs by id",
          "parameters": [
            {"name": "status", "in": "query", "schema": {"type": "string"}},
            {"name": "model", "in": "query", "schema": {"type": "string"}},
            {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}],
          "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobPage"}}}},
                        "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
        "/api/jobs/{id}": {"get": {"operationId": "getJob", "summary": "A job's latest state, in the shape of KLIQ's GET /cv/jobs/{id}",
          "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
          "responses": {"200": {"description": "the job document", "content": {"application/json": {"schema": {"type": "object", "required": ["id", "status", "eventId"]}}}},
                        "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}}
      },
      "components": {
        "parameters": {"CSRF": {"name": "X-CSRF-Token", "in": "header", "required": true, "schema": {"type": "string"},
                                "description": "the token every GET /api/ answer carries in its X-CSRF-Token header"}},
        "securitySchemes": {"bearerToken": {"type": "http", "scheme": "bearer", "description": "the --admin-token-file token; required whenever one is configured"}},
        "responses": {
          "BadRequest": {"description": "a query parameter is not valid", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unauthorized": {"description": "the admin token is missing or wrong", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Forbidden": {"description": "no or a wrong X-CSRF-Token, or an Origin other than the console's: nothing changed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "no such event or job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "Redriven": {"type": "object", "required": ["redriven"], "properties": {"redriven": {"type": "integer"}}},
          "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
          "Stats": {"type": "object", "required": ["accepted", "duplicates", "refused", "pending", "retrying", "dead"],
            "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                           "refused": {"type": "object", "additionalProperties": {"type": "integer"}},
                           "pending": {"type": "integer"}, "retrying": {"type": "integer"}, "dead": {"type": "integer"}}},
          "HandlerState": {"type": "string", "enum": ["pending", "retrying", "succeeded", "dead"]},
          "EventItem": {"type": "object", "required": ["id", "type", "acceptedAt", "handlers"],
            "properties": {"id": {"type": "string"}, "sequence": {"type": "integer"}, "type": {"type": "string"}, "jobId": {"type": "string"},
                           "acceptedAt": {"type": "string"}, "handlers": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/HandlerState"}}}},
          "EventPage": {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/EventItem"}}, "next": {"type": ["string", "null"]}}},
          "Attempt": {"type": "object", "required": ["at", "outcome", "error", "nextAttemptAt"],
            "properties": {"at": {"type": ["string", "null"]}, "outcome": {"type": "string", "enum": ["success", "failure", "dead"]},
                           "error": {"type": ["string", "null"]}, "nextAttemptAt": {"type": ["string", "null"]}}},
          "EventDetail": {"type": "object", "required": ["id", "type", "body", "bytes", "sha256", "handlers"],
            "properties": {"id": {"type": "string"}, "sequence": {"type": "integer"}, "type": {"type": "string"}, "jobId": {"type": "string"},
                           "acceptedAt": {"type": "string"}, "body": {"type": "string"}, "bytes": {"type": "integer"}, "sha256": {"type": "string"},
                           "handlers": {"type": "object", "additionalProperties": {"type": "object", "required": ["state", "attempts"],
                             "properties": {"state": {"$ref": "#/components/schemas/HandlerState"}, "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}}}}}}},
          "JobItem": {"type": "object", "required": ["id", "status", "eventId"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"}, "model": {"type": "string"}, "updatedAt": {"type": "string"}, "eventId": {"type": "string"}}},
          "JobPage": {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/JobItem"}}, "next": {"type": ["string", "null"]}}}
        }
      }
    }
    """#
}
