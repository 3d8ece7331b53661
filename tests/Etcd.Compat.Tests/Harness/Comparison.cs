using System.Text;

namespace Etcd.Compat.Tests.Harness;

/// <summary>One etcdctl invocation in a scenario.</summary>
/// <param name="Args">etcdctl arguments after --endpoints.</param>
/// <param name="ExpectedExit">Exit code both sides must produce (guards against "both failed the same way").</param>
/// <param name="Stdin">Text fed to stdin (txn -i), or null.</param>
/// <param name="Protobuf">True for -w protobuf: stdout is compared as normalised protobuf bytes.</param>
/// <param name="LearnIdAs">
/// If set, the 16-hex-digit ID after "lease " in each side's stdout (etcdctl's "lease %016x granted ...")
/// or the decimal "ID" of -w json output is learnt under this name: later steps may write <c>{NAME}</c> in <see cref="Args"/> (each side gets its
/// own ID in %x form) and every output has that side's ID replaced by <c>&lt;NAME&gt;</c> / <c>&lt;NAME_HEX&gt;</c>.
/// Lease IDs are server-generated (etcd: member-ID prefix + clock), so they legitimately differ.
/// </param>
/// <param name="ExtraNormalise">Scenario-specific rewrite applied to both sides' stdout and stderr after the standard rules (e.g. a remaining TTL).</param>
/// <param name="StreamLines">
/// For commands that never end (watch): stop etcdctl once its stdout holds this many lines (exit code
/// <see cref="Etcdctl.StoppedAfterCondition"/>), or after 10 s (<see cref="Etcdctl.TimedOut"/>).
/// </param>
public sealed record Step(
    string[] Args,
    int ExpectedExit = 0,
    string? Stdin = null,
    bool Protobuf = false,
    string? LearnIdAs = null,
    Func<string, string>? ExtraNormalise = null,
    int? StreamLines = null)
{
    /// <inheritdoc/>
    public override string ToString() => "etcdctl " + string.Join(' ', Args.Select(a => a.Contains(' ') || a.Length == 0 ? $"'{a}'" : a)) +
                                         (Stdin is null ? string.Empty : $" <<< {Abbreviate(Stdin).Replace("\n", "\\n")}");

    private static string Abbreviate(string s) => s.Length <= 200 ? s : $"{s[..100]}...({s.Length} chars)";
}

/// <summary>
/// Runs scenarios against both members of a <see cref="MemberPair"/> in lockstep (each step on both
/// sides before the next step) and compares normalised stdout, stderr and exit code.
/// </summary>
public sealed class Comparison
{
    /// <summary>
    /// If set, each comparison writes its normalised transcript (every step, both sides) to
    /// &lt;dir&gt;/&lt;name&gt;.txt: handy to see what is compared and to debug mismatches.
    /// </summary>
    public const string TranscriptDirVariable = "COMPAT_TRANSCRIPT_DIR";

    /// <summary>Bound on one scenario's wall-clock time; a hung server fails the test instead of stalling the run.</summary>
    public static readonly TimeSpan ScenarioBudget = TimeSpan.FromSeconds(120);

    private readonly DateTime _deadline = DateTime.UtcNow + ScenarioBudget;
    private readonly MemberPair _pair;
    private readonly List<string> _mismatches = new();
    private readonly StringBuilder? _transcript;
    private readonly string _name;
    private readonly Dictionary<string, ulong> _referenceIds = new();
    private readonly Dictionary<string, ulong> _underTestIds = new();
    private int _steps;

    /// <summary>Creates a comparison named <paramref name="name"/> (used for the transcript file) over <paramref name="pair"/>.</summary>
    public Comparison(MemberPair pair, string name = "comparison")
    {
        _pair = pair;
        _name = name;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(TranscriptDirVariable)))
        {
            _transcript = new StringBuilder();
        }
    }

    /// <summary>Number of steps run so far.</summary>
    public int Steps => _steps;

    /// <summary>Shorthand: a step expected to succeed.</summary>
    public static Step Ok(params string[] args) => new(args);

    /// <summary>Shorthand: a step expected to exit with <paramref name="exit"/>.</summary>
    public static Step Fails(int exit, params string[] args) => new(args, exit);

    /// <summary>Runs <paramref name="steps"/> in order on both sides and records mismatches.</summary>
    public async Task RunAsync(IEnumerable<Step> steps)
    {
        foreach (var step in steps)
        {
            await RunAsync(step);
        }
    }

    /// <summary>Runs one step on both sides; records a mismatch; returns the two raw results (reference, under test).</summary>
    public async Task<(EtcdctlResult Reference, EtcdctlResult UnderTest)> RunAsync(Step step)
    {
        // Fail fast (with everything seen so far) rather than run every remaining step into a dead or hung server.
        if (!_pair.UnderTest.IsRunning || !_pair.Reference.IsRunning || DateTime.UtcNow > _deadline)
        {
            var why = !_pair.UnderTest.IsRunning ? "the server under test is not running (it exited)"
                : !_pair.Reference.IsRunning ? "the reference etcd is not running (it exited)"
                : $"the scenario exceeded its {ScenarioBudget.TotalSeconds:0} s budget";
            _mismatches.Add($"ABORTED before step {_steps + 1} ({step}): {why}");
            AssertNoMismatches();
        }

        _steps++;
        var referenceTask = Run(_pair.Reference.Endpoint, SubstituteIds(step.Args, _referenceIds), step);
        var underTestTask = Run(_pair.UnderTest.Endpoint, SubstituteIds(step.Args, _underTestIds), step);
        await Task.WhenAll(referenceTask, underTestTask);
        var reference = referenceTask.Result;
        var underTest = underTestTask.Result;

        var problems = new List<string>();
        if (step.LearnIdAs is { } idName)
        {
            var refId = LearnId(reference.Stdout);
            var ourId = LearnId(underTest.Stdout);
            if (refId is null)
            {
                problems.Add($"REFERENCE output has no lease ID to learn as {idName}");
            }
            else
            {
                _referenceIds[idName] = refId.Value;
            }

            if (ourId is null)
            {
                problems.Add($"under test output has no lease ID to learn as {idName}");
            }
            else
            {
                _underTestIds[idName] = ourId.Value;
            }
        }

        if (reference.ExitCode != step.ExpectedExit)
        {
            problems.Add($"REFERENCE etcd exited {reference.ExitCode}, scenario expects {step.ExpectedExit} (the scenario itself is wrong or the reference misbehaved)");
        }

        if (underTest.ExitCode != reference.ExitCode)
        {
            problems.Add($"exit code: reference {reference.ExitCode}, under test {underTest.ExitCode}");
        }

        var extra = step.ExtraNormalise ?? (s => s);
        var refOut = step.Protobuf
            ? OutputNormaliser.NormaliseProtobuf(reference.StdoutBytes, _pair.ReferenceIdentity)
            : extra(OutputNormaliser.Normalise(reference.Stdout, _pair.ReferenceIdentity, _referenceIds));
        var ourOut = step.Protobuf
            ? OutputNormaliser.NormaliseProtobuf(underTest.StdoutBytes, _pair.UnderTestIdentity)
            : extra(OutputNormaliser.Normalise(underTest.Stdout, _pair.UnderTestIdentity, _underTestIds));
        if (refOut != ourOut)
        {
            problems.Add($"stdout differs (normalised):\n  reference:\n{Indent(refOut)}\n  under test:\n{Indent(ourOut)}");
        }

        var refErr = extra(OutputNormaliser.Normalise(reference.Stderr, _pair.ReferenceIdentity, _referenceIds));
        var ourErr = extra(OutputNormaliser.Normalise(underTest.Stderr, _pair.UnderTestIdentity, _underTestIds));
        if (refErr != ourErr)
        {
            problems.Add($"stderr differs (normalised):\n  reference:\n{Indent(refErr)}\n  under test:\n{Indent(ourErr)}");
        }

        _transcript?.Append("=== step ").Append(_steps).Append(": ").Append(step).Append('\n')
            .Append("--- reference exit ").Append(reference.ExitCode).Append(" stdout:\n").Append(refOut).Append('\n')
            .Append("--- reference stderr:\n").Append(refErr).Append('\n')
            .Append("--- under test exit ").Append(underTest.ExitCode).Append(problems.Count == 0 ? " (same)\n" : " DIFFERENT:\n  " + string.Join("\n  ", problems) + "\n");

        if (problems.Count > 0)
        {
            _mismatches.Add($"step {_steps}: {step}\n  " + string.Join("\n  ", problems));
        }

        return (reference, underTest);
    }

    /// <summary>Fails the test listing every mismatching step (with both normalised outputs) and the members' log tails.</summary>
    public void AssertNoMismatches()
    {
        if (_transcript is not null)
        {
            var dir = Environment.GetEnvironmentVariable(TranscriptDirVariable)!;
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, _name + ".txt"), _transcript.ToString());
        }

        if (_mismatches.Count == 0)
        {
            Assert.True(_steps > 0, "scenario ran no steps");
            return;
        }

        var report = new StringBuilder();
        report.Append(_mismatches.Count).Append(" of ").Append(_steps).Append(" steps differ between real etcd (")
            .Append(_pair.Reference.BinaryPath).Append(") and the server under test (").Append(_pair.UnderTest.BinaryPath).Append("):\n\n");
        foreach (var m in _mismatches)
        {
            report.Append(m).Append("\n\n");
        }

        report.Append("--- server under test log tail ---\n").Append(_pair.UnderTest.LogTail(40));
        Assert.Fail(report.ToString());
    }

    private static Task<EtcdctlResult> Run(string endpoint, string[] args, Step step) =>
        step.StreamLines is { } lines
            ? Etcdctl.RunUntilAsync(endpoint, args, s => s.Count(ch => ch == '\n') >= lines, TimeSpan.FromSeconds(10))
            : Etcdctl.RunAsync(endpoint, args, step.Stdin);

    private static ulong? LearnId(string stdout)
    {
        var hex = System.Text.RegularExpressions.Regex.Match(stdout, "lease ([0-9a-f]{16})");
        if (hex.Success)
        {
            return ulong.Parse(hex.Groups[1].Value, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        }

        var json = System.Text.RegularExpressions.Regex.Match(stdout, "\"ID\":([0-9]+)");
        return json.Success ? ulong.Parse(json.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    private static string[] SubstituteIds(string[] args, Dictionary<string, ulong> ids) =>
        args.Select(a => ids.Aggregate(a, (s, id) => s.Replace("{" + id.Key + "}", id.Value.ToString("x", System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))).ToArray();

    private static string Indent(string s) => string.Join('\n', s.Split('\n').Select(l => "    |" + l));
}
