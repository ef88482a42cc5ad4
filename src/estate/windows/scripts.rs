//! The PowerShell (and embedded T-SQL / ASDK) scripts of the windows driver, one
//! generator per operation, pure functions of their inputs so snapshot tests can pin
//! every byte an operator would run.
//!
//! Conventions: each script sets `$ErrorActionPreference = 'Stop'` (any failure ends it
//! with an error), prints exactly ONE line of JSON (`ConvertTo-Json -Compress`) as its
//! last output, and holds every outside value only inside a quoted literal from
//! [`crate::quote`]. T-SQL runs through `sqlcmd -E -b -x` (Windows auth, fail on error,
//! no `$(var)` substitution); result rows are tagged `WAYMARK|...` and parsed in Rust.

use crate::quote::{ps, ps_array, tsql_ident, tsql_str, url_segment};

fn header(op: &str) -> String {
    format!(
        "# waymark estate operation: {op}\n$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"
    )
}

/// A script that runs one T-SQL batch with sqlcmd and prints its `WAYMARK|` rows.
fn sql(op: &str, instance: &str, tsql: &str) -> String {
    sql_with(op, instance, tsql, "", "")
}

/// [`sql`] with extra sqlcmd switches (after `-b`) and a comment saying why, above them.
fn sql_with(op: &str, instance: &str, tsql: &str, why: &str, switches: &str) -> String {
    format!(
        r#"{h}{why}$instance = {inst}
$query = {query}
if (-not (Get-Command -Name 'sqlcmd' -ErrorAction SilentlyContinue)) {{ throw 'sqlcmd.exe is not installed on this server: install the SQL Server command-line utilities' }}
$ErrorActionPreference = 'Continue'
$lines = @(& sqlcmd -E -b{switches} -x -S $instance -d master -h -1 -W -s '|' -Q $query 2>&1 | ForEach-Object {{ [string]$_ }})
$code = $LASTEXITCODE
$ErrorActionPreference = 'Stop'
if ($code -ne 0) {{ throw ('sqlcmd -S {{0}} failed (exit {{1}}): {{2}}' -f $instance, $code, ($lines -join ' ')) }}
$rows = @($lines | Where-Object {{ $_.StartsWith('WAYMARK|') }})
[pscustomobject]@{{ rows = $rows }} | ConvertTo-Json -Compress
"#,
        h = header(op),
        inst = ps(instance),
        query = ps(tsql),
    )
}

/// The ASDK endpoint URL of `service`/`method` on NS `host`.
fn asdk_uri(host: &str, service: &str, method: &str) -> String {
    format!(
        "https://{host}/altiris/ASDK.NS/{}.asmx/{}",
        url_segment(service),
        url_segment(method)
    )
}

/// `ns_version` / `verify_version`: the Altiris.NS assemblies in both GACs.
pub(super) fn ns_version(op: &str) -> String {
    format!(
        r#"{h}$roots = @(
    (Join-Path $env:windir 'assembly\GAC_MSIL\Altiris.NS'),
    (Join-Path $env:windir 'Microsoft.NET\assembly\GAC_MSIL\Altiris.NS')
)
$found = @(foreach ($root in $roots) {{
    if (Test-Path -LiteralPath $root) {{
        Get-ChildItem -LiteralPath $root -Recurse -Filter 'Altiris.NS.dll' | ForEach-Object {{
            [pscustomobject]@{{
                path = $_.FullName
                file_version = $_.VersionInfo.FileVersion
                assembly_version = [Reflection.AssemblyName]::GetAssemblyName($_.FullName).Version.ToString()
            }}
        }}
    }}
}})
[pscustomobject]@{{ assemblies = $found }} | ConvertTo-Json -Compress -Depth 4
"#,
        h = header(op)
    )
}

/// `collation`: SQL Server vs CMDB collation.
pub(super) fn collation(instance: &str, database: &str) -> String {
    let tsql = format!(
        "SET NOCOUNT ON; SELECT 'WAYMARK', CONVERT(nvarchar(128), SERVERPROPERTY('Collation')), CONVERT(nvarchar(128), DATABASEPROPERTYEX({}, 'Collation'));",
        tsql_str(database)
    );
    sql("collation", instance, &tsql)
}

/// `disk_free`: free and total bytes of a drive (the OS drive when `drive` is `None`).
pub(super) fn disk_free(drive: Option<&str>) -> String {
    let pick = match drive {
        Some(d) => format!("$drive = {}\n", ps(d)),
        None => "$drive = $env:SystemDrive\n".to_string(),
    };
    format!(
        r#"{h}{pick}$info = New-Object System.IO.DriveInfo $drive
[pscustomobject]@{{ drive = $drive; free_bytes = $info.AvailableFreeSpace; size_bytes = $info.TotalSize }} | ConvertTo-Json -Compress
"#,
        h = header("disk_free")
    )
}

/// `hardware`: cores, memory and the model (which tells virtual hardware apart).
pub(super) fn hardware() -> String {
    format!(
        r#"{h}$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$cores = (Get-CimInstance -ClassName Win32_Processor | Measure-Object -Property NumberOfCores -Sum).Sum
[pscustomobject]@{{
    cores = $cores
    logical_processors = $cs.NumberOfLogicalProcessors
    ram_bytes = $cs.TotalPhysicalMemory
    manufacturer = $cs.Manufacturer
    model = $cs.Model
}} | ConvertTo-Json -Compress
"#,
        h = header("hardware")
    )
}

/// `software` on the server itself: OS, IIS, .NET 4.x release, Java.
pub(super) fn software_host() -> String {
    format!(
        r#"{h}$os = Get-CimInstance -ClassName Win32_OperatingSystem
$iis = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\InetStp' -ErrorAction SilentlyContinue
$ndp = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\NET Framework Setup\NDP\v4\Full' -ErrorAction SilentlyContinue
$java = Get-Command -Name 'java.exe' -ErrorAction SilentlyContinue | Select-Object -First 1
[pscustomobject]@{{
    os = $os.Caption
    os_version = $os.Version
    iis = $(if ($iis) {{ '{{0}}.{{1}}' -f $iis.MajorVersion, $iis.MinorVersion }} else {{ $null }})
    dotnet_release = $(if ($ndp) {{ $ndp.Release }} else {{ $null }})
    java = $(if ($java) {{ $java.FileVersionInfo.ProductVersion }} else {{ $null }})
}} | ConvertTo-Json -Compress
"#,
        h = header("software")
    )
}

/// `software` on the NS's SQL server: product version and edition.
pub(super) fn software_sql(instance: &str) -> String {
    sql(
        "software",
        instance,
        "SET NOCOUNT ON; SELECT 'WAYMARK', CONVERT(nvarchar(128), SERVERPROPERTY('ProductVersion')), CONVERT(nvarchar(128), SERVERPROPERTY('Edition'));",
    )
}

/// `replication_status`: ASDK `IsHierarchyMember` on the NS.
pub(super) fn replication_status(host: &str) -> String {
    format!(
        r#"{h}$uri = {uri}
$response = Invoke-RestMethod -Method Post -UseDefaultCredentials -Uri $uri -Body @{{}}
$member = $(if ($response -is [xml]) {{ $response.DocumentElement.InnerText }} else {{ [string]$response }})
[pscustomobject]@{{ member = $member }} | ConvertTo-Json -Compress
"#,
        h = header("replication_status"),
        uri = ps(&asdk_uri(
            host,
            "HierarchyManagementService",
            "IsHierarchyMember"
        )),
    )
}

/// `installed_products`: names recorded in SIM's InstallHistoryPL.Xml.
pub(super) fn installed_products() -> String {
    format!(
        r#"{h}$aim = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Altiris\AIM' -Name 'InstallDir' -ErrorAction SilentlyContinue
if (-not $aim) {{ $aim = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Wow6432Node\Altiris\AIM' -Name 'InstallDir' -ErrorAction SilentlyContinue }}
if (-not $aim) {{ throw 'SIM is not installed here: HKLM\SOFTWARE\Altiris\AIM InstallDir is missing' }}
$file = Join-Path $aim.InstallDir 'InstallHistoryPL.Xml'
[xml]$doc = Get-Content -LiteralPath $file -Raw
$fromAttributes = @($doc.SelectNodes('//@*') | Where-Object {{ $_.LocalName -match 'name' }} | ForEach-Object {{ $_.Value }})
$fromElements = @($doc.SelectNodes('//*[not(*)]') | Where-Object {{ $_.LocalName -match 'name' }} | ForEach-Object {{ $_.InnerText }})
$names = @($fromAttributes + $fromElements | Where-Object {{ $_ }} | Sort-Object -Unique)
[pscustomobject]@{{ file = $file; names = $names }} | ConvertTo-Json -Compress
"#,
        h = header("installed_products")
    )
}

/// `dcom`: the EnableDCOM registry value.
pub(super) fn dcom() -> String {
    format!(
        r#"{h}$value = (Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Ole' -Name 'EnableDCOM' -ErrorAction SilentlyContinue).EnableDCOM
[pscustomobject]@{{ value = $value }} | ConvertTo-Json -Compress
"#,
        h = header("dcom")
    )
}

/// `app_pools`: every IIS application pool and its state.
pub(super) fn app_pools() -> String {
    format!(
        r#"{h}Import-Module WebAdministration
$pools = @(Get-ChildItem -Path 'IIS:\AppPools' | ForEach-Object {{
    [pscustomobject]@{{ name = $_.Name; state = (Get-WebAppPoolState -Name $_.Name).Value }}
}})
[pscustomobject]@{{ pools = $pools }} | ConvertTo-Json -Compress -Depth 4
"#,
        h = header("app_pools")
    )
}

/// `smp_log_errors`: error/warning lines in recent SMP logs (line format unverified).
pub(super) fn smp_log_errors(since_secs: u64) -> String {
    format!(
        r#"{h}$dir = Join-Path $env:ProgramData 'Symantec\SMP\Logs'
$since = (Get-Date).AddSeconds(-{since_secs})
$files = @(Get-ChildItem -LiteralPath $dir -Filter 'a*.log' -Force | Where-Object {{ $_.LastWriteTime -ge $since }})
$errorLines = @($files | Select-String -Pattern 'error')
$warningLines = @($files | Select-String -Pattern 'warning')
[pscustomobject]@{{
    files = $files.Count
    errors = $errorLines.Count
    warnings = $warningLines.Count
    samples = @($errorLines | Select-Object -First 5 | ForEach-Object {{ $_.Line }})
}} | ConvertTo-Json -Compress
"#,
        h = header("smp_log_errors")
    )
}

/// `agent_versions`: agent/plug-in versions from Inv_AeX_AC_Client_Agent, optionally
/// limited to the members of one filter and/or to one computer (by its name in
/// vComputer, e.g. a site server verified on its own).
pub(super) fn agent_versions(
    instance: &str,
    database: &str,
    group: Option<&str>,
    computer: Option<&str>,
) -> String {
    let mut joins = String::new();
    let mut wheres = Vec::new();
    if let Some(g) = group {
        joins.push_str(" JOIN dbo.CollectionMembership AS cm ON cm.ResourceGuid = a._ResourceGuid JOIN dbo.vCollection AS c ON c.Guid = cm.CollectionGuid");
        wheres.push(format!("c.Name = {}", tsql_str(g)));
    }
    if let Some(name) = computer {
        joins.push_str(" JOIN dbo.vComputer AS vc ON vc.Guid = a._ResourceGuid");
        wheres.push(format!("vc.Name = {}", tsql_str(name)));
    }
    let filter = if wheres.is_empty() {
        joins
    } else {
        format!("{joins} WHERE {}", wheres.join(" AND "))
    };
    let tsql = format!(
        "SET NOCOUNT ON; USE {}; SELECT 'WAYMARK', CONVERT(nvarchar(30), COUNT(*)), a.[Product Version], a.[Agent Name] FROM dbo.Inv_AeX_AC_Client_Agent AS a{filter} GROUP BY a.[Agent Name], a.[Product Version];",
        tsql_ident(database)
    );
    sql("agent_versions", instance, &tsql)
}

/// `list_policies` (and the first phase of `disable_policies`): policy items with their
/// enabled state, selected by name patterns or by id.
pub(super) fn list_policies(
    op: &str,
    instance: &str,
    database: &str,
    patterns: &[String],
    ids: Option<&[String]>,
) -> String {
    let filter = match ids {
        Some(ids) if !ids.is_empty() => format!(
            "i.Guid IN ({})",
            ids.iter()
                .map(|id| format!("CONVERT(uniqueidentifier, {})", tsql_str(id)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(_) => "1 = 0".to_string(),
        None if patterns.is_empty() => "1 = 0".to_string(),
        None => patterns
            .iter()
            .map(|p| format!("i.Name LIKE {}", tsql_str(p)))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let tsql = format!(
        "SET NOCOUNT ON; USE {}; SELECT 'WAYMARK', CONVERT(nvarchar(36), i.Guid), CONVERT(nvarchar(1), ia.Enabled), i.Name FROM dbo.Item AS i JOIN dbo.ItemActive AS ia ON ia.Guid = i.Guid WHERE {filter} ORDER BY i.Name;",
        tsql_ident(database)
    );
    sql(op, instance, &tsql)
}

/// `enable_policies` / `disable_policies`: ASDK Enable/DisablePolicyItem per GUID.
pub(super) fn policy_items(op: &str, host: &str, enable: bool, ids: &[String]) -> String {
    let method = if enable {
        "EnablePolicyItem"
    } else {
        "DisablePolicyItem"
    };
    format!(
        r#"{h}$uri = {uri}
$ids = {ids}
foreach ($id in $ids) {{
    $null = Invoke-RestMethod -Method Post -UseDefaultCredentials -Uri $uri -Body @{{ policyItemGuid = $id }}
}}
[pscustomobject]@{{ done = $ids }} | ConvertTo-Json -Compress
"#,
        h = header(op),
        uri = ps(&asdk_uri(host, "ItemManagementService", method)),
        ids = ps_array(ids),
    )
}

/// `set_replication`: ASDK EnableHierarchyReplication on the NS.
pub(super) fn set_replication(host: &str, enabled: bool) -> String {
    format!(
        r#"{h}$uri = {uri}
$null = Invoke-RestMethod -Method Post -UseDefaultCredentials -Uri $uri -Body @{{ enable = {flag} }}
[pscustomobject]@{{ enabled = {ps_bool} }} | ConvertTo-Json -Compress
"#,
        h = header("set_replication"),
        uri = ps(&asdk_uri(
            host,
            "HierarchyManagementService",
            "EnableHierarchyReplication"
        )),
        flag = ps(if enabled { "true" } else { "false" }),
        ps_bool = if enabled { "$true" } else { "$false" },
    )
}

/// `backup_ns`: copy the NS install folder (registry InstallPath) to a dated folder.
pub(super) fn backup_ns(server: &str, dest: &str) -> String {
    format!(
        r#"{h}$key = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Altiris\eXpress\Notification Server' -Name 'InstallPath'
$source = ([string]$key.InstallPath).TrimEnd('\')
$target = Join-Path {dest} ('{{0}}-ns-{{1}}' -f {server}, (Get-Date -Format 'yyyyMMdd-HHmmss'))
$ErrorActionPreference = 'Continue'
$log = @(& robocopy $source $target /E /R:1 /W:1 /NP /NFL /NDL /NJH 2>&1 | ForEach-Object {{ [string]$_ }})
$code = $LASTEXITCODE
$ErrorActionPreference = 'Stop'
if ($code -ge 8) {{ throw ('robocopy {{0}} -> {{1}} failed (exit {{2}}): {{3}}' -f $source, $target, $code, ($log -join ' ')) }}
$files = @(Get-ChildItem -LiteralPath $target -Recurse -File).Count
[pscustomobject]@{{ path = $target; files = $files }} | ConvertTo-Json -Compress
"#,
        h = header("backup_ns"),
        dest = ps(dest),
        server = ps(server),
    )
}

/// `backup_cmdb`: full backup with checksums, optionally verified, and its size.
pub(super) fn backup_cmdb(instance: &str, database: &str, file: &str, verify: bool) -> String {
    let verify_sql = if verify {
        format!(
            " RESTORE VERIFYONLY FROM DISK = {} WITH CHECKSUM;",
            tsql_str(file)
        )
    } else {
        String::new()
    };
    let tsql = format!(
        "SET NOCOUNT ON; BACKUP DATABASE {db} TO DISK = {file} WITH COPY_ONLY, CHECKSUM, INIT;{verify_sql} SELECT TOP (1) 'WAYMARK', CONVERT(nvarchar(30), backup_size) FROM msdb.dbo.backupset WHERE database_name = {name} AND type = 'D' ORDER BY backup_finish_date DESC;",
        db = tsql_ident(database),
        file = tsql_str(file),
        name = tsql_str(database),
    );
    sql_with(
        "backup_cmdb",
        instance,
        &tsql,
        "# COPY_ONLY: this backup is taken for the upgrade; it must not become the base of\n# the differential backups the site takes itself (a normal full backup resets their chain).\n",
        "",
    )
}

/// `restore_cmdb`: restore a backup with checksums.
pub(super) fn restore_cmdb(instance: &str, database: &str, file: &str, replace: bool) -> String {
    let tsql = format!(
        "SET NOCOUNT ON; RESTORE DATABASE {} FROM DISK = {} WITH CHECKSUM, RECOVERY{}; SELECT 'WAYMARK', 'restored';",
        tsql_ident(database),
        tsql_str(file),
        if replace { ", REPLACE" } else { "" }
    );
    sql("restore_cmdb", instance, &tsql)
}

/// `defragment_cmdb`: reorganize indexes between the thresholds, rebuild above.
pub(super) fn defragment_cmdb(
    instance: &str,
    database: &str,
    reorganize_above: i64,
    rebuild_above: i64,
    min_pages: i64,
) -> String {
    let tsql = format!(
        "SET NOCOUNT ON; USE {db}; \
DECLARE @reorganized int = 0, @rebuilt int = 0, @sql nvarchar(max), @frag float, @schema sysname, @table sysname, @index sysname; \
DECLARE waymark_ix CURSOR LOCAL FAST_FORWARD FOR \
SELECT s.name, o.name, i.name, ps.avg_fragmentation_in_percent \
FROM sys.dm_db_index_physical_stats(DB_ID(), NULL, NULL, NULL, 'LIMITED') AS ps \
JOIN sys.indexes AS i ON i.object_id = ps.object_id AND i.index_id = ps.index_id \
JOIN sys.objects AS o ON o.object_id = ps.object_id \
JOIN sys.schemas AS s ON s.schema_id = o.schema_id \
WHERE ps.index_id > 0 AND o.is_ms_shipped = 0 AND ps.page_count >= {min_pages} AND ps.avg_fragmentation_in_percent >= {reorganize_above}; \
OPEN waymark_ix; FETCH NEXT FROM waymark_ix INTO @schema, @table, @index, @frag; \
WHILE @@FETCH_STATUS = 0 BEGIN \
SET @sql = N'ALTER INDEX ' + QUOTENAME(@index) + N' ON ' + QUOTENAME(@schema) + N'.' + QUOTENAME(@table) + CASE WHEN @frag > {rebuild_above} THEN N' REBUILD' ELSE N' REORGANIZE' END; \
EXEC sp_executesql @sql; \
IF @frag > {rebuild_above} SET @rebuilt += 1 ELSE SET @reorganized += 1; \
FETCH NEXT FROM waymark_ix INTO @schema, @table, @index, @frag; \
END; CLOSE waymark_ix; DEALLOCATE waymark_ix; \
SELECT 'WAYMARK', @reorganized, @rebuilt;",
        db = tsql_ident(database),
    );
    sql_with(
        "defragment_cmdb",
        instance,
        &tsql,
        "# -I (QUOTED_IDENTIFIER ON): ALTER INDEX ... REBUILD fails with Msg 1934 on indexes\n# over computed columns and on filtered indexes without it.\n",
        " -I",
    )
}

/// `run_scheduled_task`: find `NS.<name>*` (GUID suffix allowed), run it, wait for it.
pub(super) fn run_scheduled_task(task: &str, wait: bool) -> String {
    let wait_block = if wait {
        r#"do {
    Start-Sleep -Seconds 5
    $state = (Get-ScheduledTask -TaskName $task.TaskName -TaskPath $task.TaskPath).State
} while ($state -eq 'Running')
"#
    } else {
        ""
    };
    format!(
        r#"{h}$prefix = {task}
$tasks = @(Get-ScheduledTask -TaskName ([WildcardPattern]::Escape($prefix) + '*') -ErrorAction SilentlyContinue)
if ($tasks.Count -eq 0) {{ throw ('no scheduled task matches ''{{0}}*'' on {{1}}' -f $prefix, $env:COMPUTERNAME) }}
if ($tasks.Count -gt 1) {{ throw ('several scheduled tasks match ''{{0}}*'': {{1}}; give the exact name as `task`' -f $prefix, (($tasks | ForEach-Object {{ $_.TaskName }}) -join ', ')) }}
$task = $tasks[0]
Start-ScheduledTask -InputObject $task
{wait_block}$info = Get-ScheduledTaskInfo -InputObject $task
[pscustomobject]@{{ task = $task.TaskName; last_result = $info.LastTaskResult }} | ConvertTo-Json -Compress
"#,
        h = header("run_scheduled_task"),
        task = ps(task),
    )
}

#[cfg(test)]
mod grammar;
#[cfg(test)]
mod tests;
