-- hmac-auth, the part HAProxy's converters cannot do: read the Authorization header
--   Signature keyId="...",algorithm="hmac-sha256",headers="@request-target date",signature="..."
-- and build the string the client signed (as APISIX's hmac-auth does): the keyId, then one line
-- per name in `headers`: "@request-target" gives "<METHOD> <path?query>", any other name gives
-- "<name>: <value>"; every line ends with "\n". The HMAC itself, its comparison and the
-- consumer lookup stay in HAProxy's configuration (hmac, base64 and map converters).
--
-- Sets txn.hmac_error (missing | malformed | header_missing) or txn.hmac_key_id,
-- txn.hmac_algorithm, txn.hmac_signature, txn.hmac_signing, txn.hmac_signed (" a b c ", the
-- signed header names, lower case) and txn.hmac_skew (seconds between the Date header and now;
-- absent when there is no parsable Date header).

local MONTHS = {Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12}

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as seconds since the epoch, or nil.
local function http_date(value)
  local d, mon, y, hh, mm, ss = value:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if d == nil or MONTHS[mon] == nil then return nil end
  return days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- One request header's whole value, or nil: fetched one by one, which costs far less than
-- building the table of every header.
local function header(txn, name)
  local value = txn.f:req_fhdr(name)
  if value == nil or value == "" then return nil end
  return value
end

core.register_action("hmac_auth_prepare", {"http-req"}, function(txn)
  local authorization = header(txn, "authorization")
  if authorization == nil or authorization:sub(1, 10) ~= "Signature " then
    txn:set_var("txn.hmac_error", "missing")
    return
  end
  local params = {}
  for key, value in authorization:sub(11):gmatch('(%w+)="([^"]*)"') do
    params[key] = value
  end
  if not (params.keyId and params.algorithm and params.signature) then
    txn:set_var("txn.hmac_error", "malformed")
    return
  end
  local lines = {params.keyId}
  local signed = {}
  local date = nil
  for name in (params.headers or ""):gmatch("%S+") do
    local lower = name:lower()
    signed[#signed + 1] = lower
    if lower == "@request-target" then
      lines[#lines + 1] = txn.sf:method() .. " " .. txn.sf:pathq()
    else
      local value = header(txn, lower)
      if value == nil then
        txn:set_var("txn.hmac_error", "header_missing")
        return
      end
      lines[#lines + 1] = name .. ": " .. value
      if lower == "date" then date = value end
    end
  end
  txn:set_var("txn.hmac_key_id", params.keyId)
  txn:set_var("txn.hmac_algorithm", params.algorithm)
  txn:set_var("txn.hmac_signature", params.signature)
  txn:set_var("txn.hmac_signing", table.concat(lines, "\n") .. "\n")
  txn:set_var("txn.hmac_signed", " " .. table.concat(signed, " ") .. " ")
  date = date or header(txn, "date")  -- fetched once
  local at = date and http_date(date)
  if at then
    txn:set_var("txn.hmac_skew", math.abs(os.time() - at))
  end
end)
