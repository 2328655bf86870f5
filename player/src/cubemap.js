// The equi-angular cubemap (`eac-3x2`, what a stream with `cubemap` set delivers)
// drawn on the same inside-out sphere as equirect: every fragment turns its direction
// into a place in the 3x2 frame, so face edges and the equi-angular warp are exact at
// any resolution and the look-around, keyboard and WebXR code need not know.
//
// The frame, as panoproject (gst-plugins/src/projection/eac.rs) and ffmpeg v360's
// `eac` make it:
//
//   +-------+-------+-------+
//   | left  | front | right |   upright
//   +-------+-------+-------+
//   | down  | back  |  up   |   turned a quarter (back clockwise, down and up
//   +-------+-------+-------+   counter-clockwise)
//
// with 2 pixels of padding at the frame's left and right edges and above and below
// each row. Directions below are in that element's frame: +z front, +x right, +y down.

import { Mesh, MeshBasicMaterial, SphereGeometry } from 'three';

/** Padding of the top rendition in pixels (scaled rungs have less: under 2 px off). */
export const EAC_PAD = 2;

const VERTEX_PARS = /* glsl */ `
varying vec3 vEacDir;
`;

// The sphere's vertices after `scale(-1, 1, 1)`: its equirect centre column (the
// front) is at -x, up is +y, and the frame's right is -z (see view.js); in the
// element's frame that is +z front, -y up, +x right.
const VERTEX_DIR = /* glsl */ `
vEacDir = vec3( -transformed.z, -transformed.y, -transformed.x );
`;

const FRAGMENT_PARS = /* glsl */ `
varying vec3 vEacDir;

#ifdef USE_MAP
// Where direction d (element frame) is in the 3x2 frame, as a texture coordinate.
vec2 eacUv( vec3 d ) {
	vec3 a = abs( d );
	float column;
	float row;
	// s across the face, t down it, both -1..1 on the cube's face plane.
	float s;
	float t;
	if ( a.x >= a.y && a.x >= a.z ) {
		row = 0.0;
		if ( d.x < 0.0 ) {
			column = 0.0; s = d.z / a.x; t = d.y / a.x; // left: (-1, t, s)
		} else {
			column = 2.0; s = -d.z / a.x; t = d.y / a.x; // right: (1, t, -s)
		}
	} else if ( a.z >= a.y ) {
		column = 1.0;
		if ( d.z > 0.0 ) {
			row = 0.0; s = d.x / a.z; t = d.y / a.z; // front: (s, t, 1)
		} else {
			row = 1.0; t = -d.x / a.z; s = -d.y / a.z; // back: (-t, -s, -1)
		}
	} else {
		row = 1.0;
		t = -d.x / a.y;
		if ( d.y > 0.0 ) {
			column = 0.0; s = -d.z / a.y; // down: (-t, 1, -s)
		} else {
			column = 2.0; s = d.z / a.y; // up: (-t, -1, s)
		}
	}
	// Equi-angular: the angle from the face centre, not its tangent, is linear in
	// the pixels (-0.5..0.5 edge to edge).
	float across = atan( s ) * ( 2.0 / PI );
	float down = atan( t ) * ( 2.0 / PI );
	vec2 size = vec2( textureSize( map, 0 ) );
	float pad = ${EAC_PAD.toFixed(1)};
	float u = pad + ( column + across + 0.5 ) * ( size.x - 2.0 * pad ) / 3.0;
	float v = pad + row * size.y * 0.5 + ( down + 0.5 ) * ( size.y * 0.5 - 2.0 * pad );
	// Video rows are flipped: texture v 1 is the frame's top.
	return vec2( u / size.x, 1.0 - v / size.y );
}
#endif
`;

// three's map_fragment with the lookup at the cubemap's coordinate (per fragment, so
// face edges stay sharp) instead of the interpolated vertex UV.
const MAP_FRAGMENT = /* glsl */ `
#ifdef USE_MAP
	vec4 sampledDiffuseColor = texture2D( map, eacUv( normalize( vEacDir ) ) );
	#ifdef DECODE_VIDEO_TEXTURE
		sampledDiffuseColor = sRGBTransferEOTF( sampledDiffuseColor );
	#endif
	diffuseColor *= sampledDiffuseColor;
#endif
`;

/**
 * An inside-out sphere of `radius` showing the cubemap in `texture`: the same
 * MeshBasicMaterial as equirect (so colour handling matches), its texture lookup
 * replaced by the cubemap's.
 */
export function cubemapSphere(texture, radius) {
  const geometry = new SphereGeometry(radius, 96, 48);
  geometry.scale(-1, 1, 1);
  const material = new MeshBasicMaterial({ map: texture });
  material.onBeforeCompile = (shader) => {
    shader.vertexShader = shader.vertexShader
      .replace('#include <common>', `#include <common>\n${VERTEX_PARS}`)
      .replace('#include <begin_vertex>', `#include <begin_vertex>\n${VERTEX_DIR}`);
    shader.fragmentShader = shader.fragmentShader
      .replace('#include <map_pars_fragment>', `#include <map_pars_fragment>\n${FRAGMENT_PARS}`)
      .replace('#include <map_fragment>', MAP_FRAGMENT);
  };
  // Not the equirect sphere's program.
  material.customProgramCacheKey = () => 'panocast-eac-3x2';
  return new Mesh(geometry, material);
}
