-- A batch written from what its writer remembers (the log's size, subjects' heads) states each
-- assumption as a guard: ledger_expect(condition, what) raises SQLSTATE LE001 naming the assumption
-- when the condition is not true, which aborts the batch's transaction. The writer tells that error
-- from every other one by its code and writes the batch again the careful way, under the head lock.
CREATE FUNCTION ledger_expect(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'a batch assumption does not hold: %', what USING ERRCODE = 'LE001';
    END IF;
    RETURN true;
END;
$$;
