-- Argo CD health of a ModelRelease (modelrelease.dev/v1alpha1), from the status the
-- operator writes: status.observedGeneration, status.phase, status.message and the
-- Available, Progressing and Degraded conditions. Uses no standard library beyond
-- Lua's base functions, so it runs as an argocd-cm override without useOpenLibs.
local hs = {}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function message(status, c)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if status.message ~= nil then
    return status.message
  end
  return ""
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.observedGeneration == nil or
    (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local degraded = condition(status, "Degraded")
local progressing = condition(status, "Progressing")
local available = condition(status, "Available")

-- A rejected revision is not served: Git asks for a version the cluster refused.
if phase == "Failed" or (phase == "RolledBack" and status.rejectedRevision ~= nil) then
  hs.status = "Degraded"
  hs.message = message(status, nil)
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = message(status, degraded)
  return hs
end
-- Waiting for a person: `kubectl modelrelease resume` or `approve`.
if phase == "Paused" then
  hs.status = "Suspended"
  hs.message = message(status, nil)
  return hs
end
if phase == "Progressing" and progressing ~= nil and progressing.reason == "WaitingForApproval" then
  hs.status = "Suspended"
  hs.message = message(status, progressing)
  return hs
end
if phase == "Succeeded" then
  if available ~= nil and available.status == "True" then
    hs.status = "Healthy"
    hs.message = message(status, nil)
  else
    hs.status = "Degraded"
    hs.message = message(status, available)
  end
  return hs
end
hs.status = "Progressing"
hs.message = message(status, nil)
return hs
