-- wrk script of bench/accounting.sh: the chat completion of chat_json.lua, streamed, without
-- `stream_options` (keygate asks the upstream for usage and removes the usage chunk).
wrk.method = "POST"
wrk.body = '{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
wrk.headers["Content-Type"] = "application/json"
