-- example script with a multi-step check: it logs in with a form (POST), reads a token from the JSON
-- answer, calls an API with that token (the session carries the login's cookie too), and judges the result.
-- The requests run inside the check hook without blocking anything else: see urlpoll.http in SCRIPTING.md.
-- Usage: LOGIN_PASSWORD=… urlpoll run scripts/login-flow.lua -- BASE_URL
local base = urlpoll.args[1] or "http://127.0.0.1:8080"
local user = os.getenv("LOGIN_USER") or "alice"
local password = os.getenv("LOGIN_PASSWORD") or "s3cret!"

local function login_flow(res)
  local s = urlpoll.http.session()
  local login, err = s:post(base .. "/login", nil, { form = { user = user, password = password } })
  if not login then return "down", "login: " .. err end
  if login.code ~= 200 then return "down", "login refused: " .. login.status end
  local ok, doc = pcall(urlpoll.json.decode, login.body)
  if not ok or type(doc) ~= "table" or type(doc.token) ~= "string" then
    return "down", "login: no token in the answer"
  end
  local api, err = s:get(base .. "/api/orders", { headers = { Authorization = "Bearer " .. doc.token } })
  if not api then return "down", "api: " .. err end
  if api.code ~= 200 then return "down", "api refused the token: " .. api.status end
  local ok, orders = pcall(urlpoll.json.decode, api.body)
  if not ok or type(orders) ~= "table" or type(orders.orders) ~= "number" then
    return "down", "api: no order count in the answer"
  end
  local took = login.latency + api.latency
  if took > 2 then return "degraded", string.format("slow: %.0f ms", took * 1000) end
  return "up", string.format("%d orders, %.0f ms", orders.orders, took * 1000)
end

urls = {
  -- The API answers 401 without a login: that it does is the poll; the check then logs in and calls it.
  { url = base .. "/api/orders", name = "orders", method = "GET", expect = 401, timeout = 5, check = login_flow },
}
