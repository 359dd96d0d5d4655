-- +goose Up

-- Per-list overrides of the reply texts (Go text/template).
CREATE TABLE list_templates (
    list_id    bigint NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    name       text NOT NULL,
    body       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, name)
);

-- +goose Down
DROP TABLE list_templates;
