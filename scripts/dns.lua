-- example script: DNS. A name must resolve to the expected address; an alert is printed when its
-- answer changes (and when it comes back).
-- Usage: urlpoll run scripts/dns.lua -- [SERVER[:PORT]] NAME ADDRESS
-- An empty SERVER ("") asks the system's resolver (/etc/resolv.conf).
local server = urlpoll.args[1] or ""
local name = urlpoll.args[2] or "www.debian.org"
local want = urlpoll.args[3] or "130.89.148.77"

urls = {
  {
    url = "dns://" .. server .. "/" .. name .. "?type=A",
    name = name,
    check = function(res)
      local got = {}
      for _, answer in ipairs(res.answers) do
        if answer.type == "A" then got[#got + 1] = answer.data end
        if answer.data == want then return "up" end
      end
      return "down", string.format("%s resolves to %s, not %s (%s)", name,
        #got > 0 and table.concat(got, ", ") or "nothing", want, res.rcode)
    end,
  },
}

function on_change(s, prev)
  if prev == nil then return end
  print(string.format("dns alert: %s is %s: %s", s.name, s.state, s.detail or s.status))
end
