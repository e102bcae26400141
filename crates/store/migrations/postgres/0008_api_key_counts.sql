-- How many keys each owner has, per region and kind (plan keys apart), kept by a trigger:
-- a create's quota check reads a few rows here instead of counting the account's keys,
-- which took milliseconds per create with tens of thousands of keys, under the change
-- feed's lock. A key without a creator counts under creator_user_id 0.
CREATE TABLE api_key_counts (
    account_id      BIGINT NOT NULL,
    region          TEXT NOT NULL,
    creator_user_id BIGINT NOT NULL,
    plan            BOOLEAN NOT NULL,
    keys            BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, creator_user_id, plan)
);

INSERT INTO api_key_counts (account_id, region, creator_user_id, plan, keys)
SELECT account_id, region, COALESCE(creator_user_id, 0), format = 'plan', COUNT(*)
FROM api_keys GROUP BY 1, 2, 3, 4;

CREATE FUNCTION api_key_counts_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE api_key_counts SET keys = keys - 1
        WHERE account_id = OLD.account_id AND region = OLD.region
          AND creator_user_id = COALESCE(OLD.creator_user_id, 0) AND plan = (OLD.format = 'plan');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO api_key_counts (account_id, region, creator_user_id, plan, keys)
        VALUES (NEW.account_id, NEW.region, COALESCE(NEW.creator_user_id, 0), NEW.format = 'plan', 1)
        ON CONFLICT (account_id, region, creator_user_id, plan) DO UPDATE SET keys = api_key_counts.keys + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_key_counts_follow AFTER INSERT OR DELETE OR UPDATE OF account_id, region, creator_user_id, format ON api_keys
FOR EACH ROW EXECUTE FUNCTION api_key_counts_follow();
