-- Argo CD health of registry.mlops.dev ModelPackageGroup, ModelPackage and Model.
-- The single source of the check: argocd-cm-patch.yaml embeds it for the three kinds;
-- after editing, run `make argocd`. Lua 5.1 (Argo CD runs gopher-lua).
--
-- The operator writes Ready, Reconciling and Stalled together, exactly one of them True,
-- each with the generation it describes (DESIGN.md "Status (contract)"):
--   status older than metadata.generation, or none yet -> Progressing
--   Stalled=True (a person must act)                 -> Degraded
--   Reconciling=True (creating, waiting, retrying)   -> Progressing
--   Ready=True                                       -> Healthy
--   none True (not written by this operator)         -> Progressing, naming what is there
-- Unknown is left to Argo CD for a script error: it ranks worse than Degraded in an
-- application's health, and a status without a True condition is replaced by the next
-- reconcile, at most one resync period later.
local hs = {}

-- nil-safe; numbers are floats in gopher-lua as in Lua 5.1, and 2.0 prints as "2" in both
local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

local function condition(status, ctype)
  if type(status) ~= "table" or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == ctype then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message", either part may be missing.
local function explain(c)
  local reason, message = text(c.reason), text(c.message)
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  return message
end

-- What a Healthy object is worth knowing at a glance, before the operator's sentence.
local function ready_summary(status)
  if obj.kind == "ModelPackage" then
    local parts = {}
    if status.modelPackageVersion ~= nil then
      local version = "Version " .. text(status.modelPackageVersion)
      if status.modelPackageGroupName ~= nil then
        version = version .. " of " .. text(status.modelPackageGroupName)
      end
      table.insert(parts, version)
    end
    if status.modelApprovalStatus ~= nil then
      table.insert(parts, text(status.modelApprovalStatus))
    end
    if #parts > 0 then
      return table.concat(parts, ", ") .. ". "
    end
  end
  if obj.kind == "Model" and type(status.containers) == "table" then
    local packages = {}
    for _, container in ipairs(status.containers) do
      if type(container) == "table" and container.modelPackageName ~= nil then
        table.insert(packages, text(container.modelPackageName))
      end
    end
    if #packages > 0 then
      return "From " .. table.concat(packages, ", ") .. ". "
    end
  end
  return ""
end

local metadata = obj.metadata or {}
local generation = metadata.generation
local status = obj.status

local function waiting()
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. text(generation) .. "."
  else
    hs.message = "Waiting for the operator to report a status."
  end
  return hs
end

-- a condition written for an older generation says nothing about the current spec
local function stale(c)
  return generation ~= nil and c.observedGeneration ~= nil and c.observedGeneration ~= generation
end

local stalled, reconciling, ready = condition(status, "Stalled"), condition(status, "Reconciling"), condition(status, "Ready")
local current = nil
if is_true(stalled) then
  current = stalled
elseif is_true(reconciling) then
  current = reconciling
elseif is_true(ready) then
  current = ready
end

-- Argo CD itself reports Progressing "Pending deletion" before running this script; kept
-- for other readers of it, with what the operator says (e.g. versions left in a group).
if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted."
  if current ~= nil and explain(current) ~= "" then
    hs.message = "Being deleted: " .. explain(current)
  end
  return hs
end

if type(status) ~= "table" or (generation ~= nil and status.observedGeneration ~= generation) then
  return waiting()
end
if current == nil then
  hs.status = "Progressing"
  if ready ~= nil then
    hs.message = "Ready is " .. text(ready.status) .. ", and neither Reconciling nor Stalled is True: " .. explain(ready)
  else
    hs.message = "The operator has not written the Ready, Reconciling and Stalled conditions yet."
  end
  return hs
end
if stale(current) then
  return waiting()
end
if current == stalled then
  hs.status = "Degraded"
  hs.message = explain(current)
elseif current == reconciling then
  hs.status = "Progressing"
  hs.message = explain(current)
else
  hs.status = "Healthy"
  hs.message = ready_summary(status) .. text(current.message)
end
return hs
