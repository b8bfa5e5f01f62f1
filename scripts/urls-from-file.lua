-- example script that reads its URL list from a file, one URL per line, skipping blank lines and
-- # comments: the seed's exercise for the reader. The file is the first argument after --, or urls.txt
-- beside this script.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local file = urlpoll.args[1] or (here .. "urls.txt")

urls = {}
for line in io.lines(file) do
  line = line:match("^%s*(.-)%s*$")
  if line ~= "" and not line:find("^#") then urls[#urls + 1] = line end
end
