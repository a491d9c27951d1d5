-- Argo CD health check for sluice.dev/TestExecution (argocd-cm key
-- resource.customizations.health.sluice.dev_TestExecution; see docs/gitops.md).
-- Healthy: the tests passed. Degraded: the execution ended any other way (Failed, TimedOut,
-- Cancelled, Rejected). Progressing: not finished yet (Pending, Queued, Running, BackingOff).
-- The Complete and Succeeded conditions decide; the phase is the fallback and the message.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Sluice operator to pick up the execution"
  return hs
end

local complete, succeeded
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Complete" then complete = c end
    if c.type == "Succeeded" then succeeded = c end
  end
end

local phase = status.phase
local message = phase
if status.reason ~= nil and status.reason ~= "" then message = message .. " (" .. status.reason .. ")" end
if status.message ~= nil and status.message ~= "" then message = message .. ": " .. status.message end
if phase == "Queued" and status.queuePosition ~= nil then
  message = message .. " [position " .. tostring(status.queuePosition) .. "]"
end
hs.message = message

local terminal = {Succeeded = true, Failed = true, TimedOut = true, Cancelled = true, Rejected = true}
local done
if complete ~= nil then done = complete.status == "True" else done = terminal[phase] == true end
if not done then
  hs.status = "Progressing"
  return hs
end
local passed
if succeeded ~= nil then passed = succeeded.status == "True" else passed = phase == "Succeeded" end
if passed then hs.status = "Healthy" else hs.status = "Degraded" end
return hs
