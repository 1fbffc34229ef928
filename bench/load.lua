-- wrk script of bench/load.sh (issue 7 load harness). Argument: "mix" (default) or "soak".
--
-- mix, by request number n of each thread (n % 20):
--   0-6  cached nearText (10 fixed texts)     7-10  uncached nearText (unique text)
--   11-13 nearImage (fixture images)          14-17 pass-through GET (/v1/objects, /v1/nodes)
--   18-19 batch import of 4 objects (unique name + fixture image) into class Imported
-- soak: uncached nearText only (every text unique: the embedding cache churns).
--
-- Every answer is checked: wrk counts non-2xx itself; here GraphQL answers with "errors", GraphQL
-- answers without results, batch answers with a FAILED object and unrecognised bodies are counted.
-- done() prints "LOAD key=value" lines that bench/load.sh parses.

local images = dofile(os.getenv("LOAD_IMAGES"))

local cached_texts = {
  "a red circle", "a blue square", "a green triangle", "a yellow star", "a pink heart",
  "a purple cross", "an orange diamond", "a brown hexagon", "a red square", "a blue circle",
}

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

local json_headers = { ["Content-Type"] = "application/json" }
local fields = "name _additional { distance }"

local function graphql(argument)
  local query = "{ Get { Shape(" .. argument .. ", limit: 3) { " .. fields .. " } } }"
  -- The query is placed in a JSON string: escape its quotes.
  local body = '{"query":"' .. string.gsub(query, '"', '\\"') .. '"}'
  return wrk.format("POST", "/v1/graphql", json_headers, body)
end

function init(args)
  mode = args[1] or "mix"
  n = 0
  sent_near_text_cached, sent_near_text_uncached, sent_near_image, sent_get, sent_batch = 0, 0, 0, 0, 0
  gql_ok, gql_errors, gql_empty, batch_ok, batch_failed, get_ok, unknown = 0, 0, 0, 0, 0, 0, 0
  first_bad = ""
end

local function uncached()
  sent_near_text_uncached = sent_near_text_uncached + 1
  return graphql('nearText: {concepts: ["load test query ' .. tid .. ' ' .. n ..
    ' about a shape of some colour on a plain background"]}')
end

function request()
  n = n + 1
  if mode == "soak" then
    return uncached()
  end
  local slot = n % 20
  if slot < 7 then
    sent_near_text_cached = sent_near_text_cached + 1
    return graphql('nearText: {concepts: ["' .. cached_texts[(n % #cached_texts) + 1] .. '"]}')
  elseif slot < 11 then
    return uncached()
  elseif slot < 14 then
    sent_near_image = sent_near_image + 1
    return graphql('nearImage: {image: "' .. images[(n % #images) + 1] .. '"}')
  elseif slot < 18 then
    sent_get = sent_get + 1
    if slot % 2 == 0 then
      return wrk.format("GET", "/v1/objects?class=Shape&limit=3")
    end
    return wrk.format("GET", "/v1/nodes")
  else
    sent_batch = sent_batch + 1
    local objects = {}
    for k = 1, 4 do
      objects[k] = '{"class":"Imported","properties":{"name":"load object ' .. tid .. ' ' .. n .. ' ' .. k ..
        '","image":"' .. images[((n + k) % #images) + 1] .. '"}}'
    end
    return wrk.format("POST", "/v1/batch/objects", json_headers,
      '{"objects":[' .. table.concat(objects, ",") .. ']}')
  end
end

local function remember(body)
  if first_bad == "" then
    first_bad = string.sub(body, 1, 300)
  end
end

function response(status, headers, body)
  if string.sub(body, 1, 1) == "[" then
    if string.find(body, '"FAILED"', 1, true) then
      batch_failed = batch_failed + 1
      remember(body)
    else
      batch_ok = batch_ok + 1
    end
  elseif string.find(body, '"data"', 1, true) then
    if string.find(body, '"errors"', 1, true) then
      gql_errors = gql_errors + 1
      remember(body)
    elseif not string.find(body, '"Shape":[{', 1, true) then
      gql_empty = gql_empty + 1
      remember(body)
    else
      gql_ok = gql_ok + 1
    end
  elseif string.find(body, '"objects"', 1, true) or string.find(body, '"nodes"', 1, true) then
    get_ok = get_ok + 1
  else
    unknown = unknown + 1
    remember(body)
  end
  if status ~= 200 then
    remember(body)
  end
end

function done(summary, latency, requests)
  local keys = {
    "sent_near_text_cached", "sent_near_text_uncached", "sent_near_image", "sent_get", "sent_batch",
    "gql_ok", "gql_errors", "gql_empty", "batch_ok", "batch_failed", "get_ok", "unknown",
  }
  local totals = {}
  for _, key in ipairs(keys) do totals[key] = 0 end
  local bad = ""
  for _, thread in ipairs(threads) do
    for _, key in ipairs(keys) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
    local first = thread:get("first_bad")
    if bad == "" and first and first ~= "" then bad = first end
  end
  for _, key in ipairs(keys) do
    io.write(string.format("LOAD %s=%d\n", key, totals[key]))
  end
  if bad ~= "" then
    io.write("first bad answer: " .. bad .. "\n")
  end
end
