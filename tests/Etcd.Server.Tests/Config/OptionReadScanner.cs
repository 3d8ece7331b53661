using System.Reflection;
using System.Reflection.Emit;

namespace Etcd.Server.Tests.Config;

/// <summary>
/// Finds the properties of an options type that no code reads: it decodes the IL of every method (lambdas, local
/// functions, async and iterator state machines included, as the compiler emits them as nested types) in the given
/// assemblies and collects the calls to the properties' getters. Reading the compiled code makes it independent of
/// formatting, names of variables, pattern syntax (<c>o is { X: true }</c>) and line breaks. Calls from excluded
/// types (the loader that fills the options, the options record itself with its generated equality and printing)
/// do not count, except that a computed property of the options type that is read passes the read on to the
/// properties it reads (<c>ResolvedDataDir</c> reads <c>DataDir</c>).
/// </summary>
internal static class OptionReadScanner
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>
    /// The public instance properties of <paramref name="optionsType"/> whose getter no method of
    /// <paramref name="assemblies"/> calls outside the types <paramref name="excluded"/> accepts (a nested type is
    /// excluded with its declaring type).
    /// </summary>
    public static IReadOnlyList<string> UnreadProperties(Type optionsType, IEnumerable<Assembly> assemblies, Func<Type, bool> excluded)
    {
        var getters = optionsType.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetMethod is { IsPublic: true } && p.DeclaringType == optionsType)
            .ToDictionary(p => p.GetMethod!, p => p.Name);
        var readOutside = new HashSet<string>(StringComparer.Ordinal);
        var readByGetter = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var assembly in assemblies.Distinct())
        {
            foreach (var type in assembly.GetTypes())
            {
                var isOptions = type == optionsType;
                var skip = !isOptions && IsExcluded(type, excluded);
                if (skip)
                {
                    continue;
                }

                foreach (var method in Methods(type))
                {
                    foreach (var called in CalledMethods(method))
                    {
                        if (called is not MethodInfo mi || !getters.TryGetValue(mi, out var name))
                        {
                            continue;
                        }

                        if (!isOptions)
                        {
                            readOutside.Add(name);
                        }
                        else if (method is MethodInfo { IsSpecialName: true } caller && getters.TryGetValue(caller, out var via))
                        {
                            // A computed property of the options type: its read counts for what it reads.
                            if (!readByGetter.TryGetValue(via, out var set))
                            {
                                readByGetter[via] = set = new HashSet<string>(StringComparer.Ordinal);
                            }

                            set.Add(name);
                        }
                    }
                }
            }
        }

        var pending = new Queue<string>(readOutside);
        while (pending.Count > 0)
        {
            if (readByGetter.TryGetValue(pending.Dequeue(), out var inner))
            {
                foreach (var n in inner.Where(readOutside.Add))
                {
                    pending.Enqueue(n);
                }
            }
        }

        return getters.Values.Where(n => !readOutside.Contains(n)).Order(StringComparer.Ordinal).ToArray();
    }

    private static bool IsExcluded(Type type, Func<Type, bool> excluded)
    {
        for (var t = type; t is not null; t = t.DeclaringType)
        {
            if (excluded(t))
            {
                return true;
            }
        }

        return false;
    }

    private static IEnumerable<MethodBase> Methods(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        return type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all));
    }

    /// <summary>The methods <paramref name="method"/>'s IL calls or takes the address of (call, callvirt, newobj, ldftn, ldvirtftn).</summary>
    public static IEnumerable<MethodBase> CalledMethods(MethodBase method)
    {
        byte[]? il;
        try
        {
            il = method.GetMethodBody()?.GetILAsByteArray();
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or BadImageFormatException)
        {
            il = null;
        }

        if (il is null)
        {
            yield break;
        }

        var typeArgs = method.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var i = 0;
        while (i < il.Length)
        {
            short value = il[i++];
            if (value == 0xFE)
            {
                value = unchecked((short)(0xFE00 | il[i++]));
            }

            if (!OpCodesByValue.TryGetValue(value, out var op))
            {
                yield break; // not IL we can decode; stop rather than misread
            }

            if (op.OperandType == OperandType.InlineMethod)
            {
                var token = BitConverter.ToInt32(il, i);
                MethodBase? target;
                try
                {
                    target = method.Module.ResolveMethod(token, typeArgs, methodArgs);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or MissingMethodException)
                {
                    target = null;
                }

                if (target is not null)
                {
                    yield return target;
                }
            }

            i += OperandSize(op, il, i);
        }
    }

    private static int OperandSize(OpCode op, byte[] il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, at)),
        _ => 4,
    };
}
