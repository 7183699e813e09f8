-- The EPCIS repository. An event belongs to the tenant that captured it; its identifiers are
-- stored in the constrained Digital Link form (CBV 2.0), its body as JSON-LD with its own
-- @context. event_seq is a platform-wide capture order (record order), used for paging and
-- subscriptions. An event declared erroneous later (errorDeclaration, same eventID and hash) is a
-- second record beside the first: nothing is overwritten. record_key makes capture idempotent:
-- the hash ID, or for an error declaration the hash ID and the digest of the whole record.
CREATE TABLE epcis_events (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    event_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    hash_id TEXT NOT NULL,
    record_key TEXT NOT NULL,
    capture_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    action TEXT,
    biz_step TEXT,
    disposition TEXT,
    read_point TEXT,
    biz_location TEXT,
    event_time_ms INTEGER NOT NULL,
    record_time_ms INTEGER NOT NULL,
    error_declared INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, event_seq)
) STRICT;
CREATE UNIQUE INDEX epcis_events_seq ON epcis_events (event_seq);
CREATE UNIQUE INDEX epcis_events_record_key ON epcis_events (tenant_id, record_key);
CREATE INDEX epcis_events_event_id ON epcis_events (tenant_id, event_id);
CREATE INDEX epcis_events_event_time ON epcis_events (event_time_ms, event_seq);

-- Every identifier an event names, with its role (epc, childEPC, parentID, inputEPC, outputEPC,
-- epcClass, childEPCClass, inputEPCClass, outputEPCClass) and its GTIN when it has one.
CREATE TABLE epcis_event_identifiers (
    tenant_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    identifier TEXT NOT NULL,
    gtin TEXT,
    PRIMARY KEY (tenant_id, event_seq, role, identifier),
    FOREIGN KEY (tenant_id, event_seq) REFERENCES epcis_events (tenant_id, event_seq)
) STRICT;
CREATE INDEX epcis_event_identifiers_identifier ON epcis_event_identifiers (identifier, event_seq);
CREATE INDEX epcis_event_identifiers_gtin ON epcis_event_identifiers (gtin, event_seq);

-- Capture jobs (GET /capture/{captureID}).
CREATE TABLE epcis_captures (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    capture_id TEXT NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    finished_unix_ms INTEGER,
    error_behaviour TEXT NOT NULL,
    success INTEGER NOT NULL,
    events_captured INTEGER NOT NULL,
    events_already_captured INTEGER NOT NULL,
    errors TEXT NOT NULL,
    PRIMARY KEY (tenant_id, capture_id)
) STRICT;

-- The namespace prefixes a tenant's documents declared (for EQ_prefix:field queries).
CREATE TABLE epcis_namespaces (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    prefix TEXT NOT NULL,
    iri TEXT NOT NULL,
    PRIMARY KEY (tenant_id, prefix, iri)
) STRICT;

-- Master data of epcisHeader.epcisMasterData: attributes as JSON, children for WD_ queries.
CREATE TABLE epcis_master_data (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    vocabulary_type TEXT NOT NULL,
    element_id TEXT NOT NULL,
    attributes TEXT NOT NULL,
    children TEXT NOT NULL,
    updated_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, vocabulary_type, element_id)
) STRICT;

-- Named queries (POST /queries): the query-schema JSON as given.
CREATE TABLE epcis_queries (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

-- Webhook subscriptions to named queries. after_seq is the delivery cursor (the last event_seq
-- delivered); it moves only after the subscriber acknowledged a delivery (at least once).
CREATE TABLE epcis_subscriptions (
    tenant_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    query_name TEXT NOT NULL,
    destination TEXT NOT NULL,
    signature_token TEXT,
    stream INTEGER NOT NULL,
    schedule TEXT,
    report_if_empty INTEGER NOT NULL,
    after_seq INTEGER NOT NULL,
    next_attempt_unix_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    deliveries INTEGER NOT NULL,
    created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id),
    FOREIGN KEY (tenant_id, query_name) REFERENCES epcis_queries (tenant_id, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX epcis_subscriptions_due ON epcis_subscriptions (next_attempt_unix_ms);

-- GS1 company prefixes seen in EPC URNs of captured documents (a platform table: prefixes are
-- public facts of GS1, not tenant data). A Digital Link does not show where its company prefix
-- ends; these let the repository answer GS1-EPC-Format: Always_EPC_URN.
CREATE TABLE epc_company_prefixes (
    company_prefix TEXT NOT NULL PRIMARY KEY,
    created_unix_ms INTEGER NOT NULL
) STRICT;
