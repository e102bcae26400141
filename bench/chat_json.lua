-- wrk script of bench/load.sh and bench/accounting.sh: one small OpenAI chat completion per request.
-- The key, when needed, is added by load.sh with -H "Authorization: Bearer ...".
wrk.method = "POST"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Hello"}]}'
wrk.headers["Content-Type"] = "application/json"
